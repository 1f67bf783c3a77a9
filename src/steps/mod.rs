//! Steps that more than one kind of run takes (an upgrade, a rollback, `hoist backup`).
pub mod backup;
pub mod checks;
pub mod engine_loss;
pub mod left_behind;
pub mod pull;
pub mod restart;
pub mod restore;
pub mod smoke;
pub mod stop;
pub mod swarm_update;
pub mod verify;
pub mod watch;
pub mod write_mark;

/// Why a step before the pin failed: its own failure, or the Docker engine going away.
pub enum StepError {
    Own(String),
    Engine(String),
}

impl std::fmt::Display for StepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepError::Own(e) | StepError::Engine(e) => f.write_str(e),
        }
    }
}
