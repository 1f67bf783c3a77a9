//! Connecting to the Docker Engine, and saying clearly why it failed when it does.
use std::error::Error as _;
use std::time::Duration;

use bollard::Docker;

/// What went wrong talking to Docker. Each message says what happened and what to do.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "Docker is not reachable: there is no Docker socket at {path}. Start Docker (`sudo systemctl start docker`), or set DOCKER_HOST to where it listens."
    )]
    NoSocket { path: String },
    #[error(
        "hoist may not use the Docker socket at {path} (permission denied). Add your user to the docker group (`sudo usermod -aG docker $USER`, then log out and in again) or run hoist with sudo."
    )]
    PermissionDenied { path: String },
    #[error(
        "The Docker daemon at {host} did not answer within {secs} s. Check that it is running (`sudo systemctl status docker`) and not overloaded, then try again."
    )]
    NotAnswering { host: String, secs: u64 },
    #[error(
        "Docker is not reachable at {host}: {reason}. Check that the Docker daemon is running (`sudo systemctl status docker`)."
    )]
    Unreachable { host: String, reason: String },
    #[error("Docker could not {what}: {reason}")]
    Api { what: String, reason: String },
}

impl DockerError {
    /// Docker being unreachable is a precondition that is not met: nothing was changed.
    pub fn exit_code(&self) -> i32 {
        3
    }

    pub(crate) fn api(what: impl Into<String>, err: bollard::errors::Error) -> Self {
        DockerError::Api {
            what: what.into(),
            reason: describe(&err),
        }
    }
}

/// A connected, answering Docker Engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) docker: Docker,
    pub host: String,
    pub server_version: String,
    pub api_version: String,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("host", &self.host)
            .field("server_version", &self.server_version)
            .finish()
    }
}

const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

impl Engine {
    /// Connects as the docker CLI does (`DOCKER_HOST`, else the default socket), pings with a
    /// timeout (bollard "connects" even with no daemon), and negotiates the API version.
    pub async fn connect(timeout: Duration) -> Result<Engine, DockerError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let socket = host.strip_prefix("unix://").map(str::to_string);
        if let Some(path) = &socket
            && !std::path::Path::new(path).exists()
        {
            return Err(DockerError::NoSocket { path: path.clone() });
        }
        let docker = Docker::connect_with_defaults()
            .map_err(|err| classify(&host, socket.as_deref(), err))?
            .with_timeout(Duration::from_secs(120));
        let secs = timeout.as_secs().max(1);
        let not_answering = || DockerError::NotAnswering {
            host: host.clone(),
            secs,
        };
        tokio::time::timeout(timeout, docker.ping())
            .await
            .map_err(|_| not_answering())?
            .map_err(|err| classify(&host, socket.as_deref(), err))?;
        let docker = tokio::time::timeout(timeout, docker.negotiate_version())
            .await
            .map_err(|_| not_answering())?
            .map_err(|err| classify(&host, socket.as_deref(), err))?;
        let version = tokio::time::timeout(timeout, docker.version())
            .await
            .map_err(|_| not_answering())?
            .map_err(|err| classify(&host, socket.as_deref(), err))?;
        Ok(Engine {
            docker,
            host,
            server_version: version.version.unwrap_or_else(|| "unknown".into()),
            api_version: version.api_version.unwrap_or_else(|| "unknown".into()),
        })
    }
}

/// Turns a connection-time error into the sentence the user needs. The interesting cause is
/// often an `io::Error` deep in hyper's chain, so walk `source()`.
fn classify(host: &str, socket: Option<&str>, err: bollard::errors::Error) -> DockerError {
    if let bollard::errors::Error::SocketNotFoundError(path) = &err {
        return DockerError::NoSocket { path: path.clone() };
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            match (io.kind(), socket) {
                (std::io::ErrorKind::PermissionDenied, _) => {
                    return DockerError::PermissionDenied {
                        path: socket.unwrap_or(host).to_string(),
                    };
                }
                (std::io::ErrorKind::NotFound, Some(path)) => {
                    return DockerError::NoSocket {
                        path: path.to_string(),
                    };
                }
                _ => {}
            }
        }
        cause = c.source();
    }
    DockerError::Unreachable {
        host: host.to_string(),
        reason: describe(&err),
    }
}

/// The innermost useful message of an error chain, on one line.
pub(crate) fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut cause = err.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cause = c.source();
    }
    parts.join(": ").replace('\n', " ")
}
