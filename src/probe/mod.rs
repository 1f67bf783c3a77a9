//! What the stack is right now: its files read and detected (`facts::load_stack`), then Docker
//! and the database asked (`facts::gather`), and each service's state derived from that. Every
//! report and the engine start from here; nothing here decides or prints.
pub mod db_command;
pub mod db_kind;
pub mod evidence;
pub mod facts;
pub mod kept_aside;
pub mod services;
pub mod sqlite_files;
pub mod swarm;
