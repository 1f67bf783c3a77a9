//! The deployed stack as its files describe it.
pub mod compose;
pub mod detect;
pub mod envfile;
pub mod interpolate;
pub mod settings;
