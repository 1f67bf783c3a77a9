//! Steps that more than one kind of run takes (an upgrade, a rollback, `hoist backup`).
pub mod backup;
pub mod engine_loss;
pub mod restart;
pub mod smoke;
pub mod stop;
pub mod verify;
pub mod watch;
