//! Everything that talks to the Docker Engine. The rest of hoist sees plain data types from here,
//! never bollard's, so a change of client stays inside this module.
pub mod compose_cli;
pub mod compose_procs;
pub mod containers;
pub mod engine;
pub mod engine_watch;
pub mod events;
pub mod exec;
pub mod images;
pub mod logs;
pub mod pull_tally;
pub mod rehearsals;
pub mod swarm;
pub mod swarm_change;
pub mod volumes;

pub use containers::{ContainerInfo, Health, Mount, last_log_lines, stack_containers};
pub use engine::{DockerError, Engine};
