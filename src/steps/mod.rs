//! Steps that more than one kind of run takes (an upgrade, a rollback, `hoist backup`).
pub mod backup;
