//! The wizard: a terminal front end over the upgrade engine's events. `state` holds what is on
//! screen and how it changes; `view` draws it, a pure function of the state.
pub mod app;
pub mod facts;
pub mod home;
pub mod state;
pub mod view;
