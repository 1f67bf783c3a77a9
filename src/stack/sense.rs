//! What a service is, told from what it does rather than what its image is called: its
//! environment (`POSTGRES_*`, `MYSQL_*`), its healthcheck (`pg_isready`), where it keeps its
//! data (`/var/lib/postgresql/data`), and how the app connects to it (`DATABASE_URL`,
//! `DB_HOST`). A locally built `myorg/db:15` is PostgreSQL when it behaves like one.
use std::path::Path;

use indexmap::IndexMap;
use serde::Serialize;

use super::compose::{ComposeFile, MountKind, Service};

/// What a stateful service was recognised as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Seen {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    Mongodb,
    /// Databases hoist has no driver for: said by name, so that an upgrade never runs past one
    /// without a dump (`kind: command` is how a user teaches hoist to dump it).
    Surrealdb,
    Couchdb,
    Influxdb,
    /// Cassandra and ScyllaDB.
    Cassandra,
    Neo4j,
    Cockroachdb,
    Arangodb,
    Rethinkdb,
    Redis,
    Clickhouse,
    /// Elasticsearch, OpenSearch, Meilisearch, Typesense.
    Search,
    /// MinIO and other S3 stores.
    ObjectStore,
}

impl Seen {
    pub fn name(self) -> &'static str {
        match self {
            Seen::Postgres => "PostgreSQL",
            Seen::Mysql => "MySQL/MariaDB",
            Seen::Mongodb => "MongoDB",
            Seen::Surrealdb => "SurrealDB",
            Seen::Couchdb => "CouchDB",
            Seen::Influxdb => "InfluxDB",
            Seen::Cassandra => "Cassandra/ScyllaDB",
            Seen::Neo4j => "Neo4j",
            Seen::Cockroachdb => "CockroachDB",
            Seen::Arangodb => "ArangoDB",
            Seen::Rethinkdb => "RethinkDB",
            Seen::Redis => "Redis",
            Seen::Clickhouse => "ClickHouse",
            Seen::Search => "a search index",
            Seen::ObjectStore => "an object store",
        }
    }

    /// A database an app keeps its records in (as opposed to a cache or an index beside it).
    pub fn is_database(self) -> bool {
        !matches!(
            self,
            Seen::Redis | Seen::Clickhouse | Seen::Search | Seen::ObjectStore
        )
    }
}

/// A recognition and the evidence for it, in words ("POSTGRES_* variables").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sensed {
    pub kind: Seen,
    pub how: String,
}

fn by_name(name: &str) -> Option<Seen> {
    let n = name.to_lowercase();
    let has = |ks: &[&str]| ks.iter().any(|k| n.contains(k));
    if has(&[
        "postgres",
        "pgvector",
        "pgvecto",
        "postgis",
        "timescaledb",
        "supabase/postgres",
    ]) {
        Some(Seen::Postgres)
    } else if has(&["mysql", "mariadb", "percona"]) {
        Some(Seen::Mysql)
    } else if has(&["mongo"]) {
        Some(Seen::Mongodb)
    } else if has(&["surrealdb"]) {
        Some(Seen::Surrealdb)
    } else if has(&["couchdb"]) {
        Some(Seen::Couchdb)
    } else if has(&["influxdb"]) {
        Some(Seen::Influxdb)
    } else if has(&["cassandra", "scylla"]) {
        Some(Seen::Cassandra)
    } else if has(&["neo4j"]) {
        Some(Seen::Neo4j)
    } else if has(&["cockroach"]) {
        Some(Seen::Cockroachdb)
    } else if has(&["arangodb"]) {
        Some(Seen::Arangodb)
    } else if has(&["rethinkdb"]) {
        Some(Seen::Rethinkdb)
    } else if has(&["clickhouse"]) {
        Some(Seen::Clickhouse)
    } else if has(&["redis", "valkey", "keydb", "dragonfly", "memcached"]) {
        Some(Seen::Redis)
    } else if has(&["elasticsearch", "opensearch", "meilisearch", "typesense"]) {
        Some(Seen::Search)
    } else if has(&["minio"]) {
        Some(Seen::ObjectStore)
    } else {
        None
    }
}

/// The repository part of an image reference, without registry host, tag or digest.
pub(crate) fn repository_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

/// What an image reference's repository name says it is (`tensorchord/pgvecto-rs:pg14` →
/// PostgreSQL).
pub(crate) fn image_kind(image: &str) -> Option<Seen> {
    by_name(repository_name(image))
}

/// What the service is, from the strongest evidence its definition gives. `env` is its
/// container environment (env files and `environment:`, interpolated).
pub fn sense(svc: &Service, env: &IndexMap<String, String>) -> Option<Sensed> {
    let found = |kind, how: &str| {
        Some(Sensed {
            kind,
            how: how.to_string(),
        })
    };
    if let Some(kind) = svc.image.as_deref().and_then(image_kind) {
        return found(kind, "its image name");
    }
    let keys = |prefixes: &[&str]| {
        env.keys()
            .any(|k| prefixes.iter().any(|p| k.starts_with(p)))
    };
    // The official images' own setup variables; an app's client settings use *_HOST etc., so
    // only the server's variables count.
    let server = |vars: &[&str]| env.keys().any(|k| vars.contains(&k.as_str()));
    // A client names its server (`POSTGRES_HOST=db`, `DATABASE_URL`); a server does not.
    let client = keys(&[
        "DATABASE_URL",
        "POSTGRES_HOST",
        "MYSQL_HOST",
        "MARIADB_HOST",
        "DB_HOST",
        "SURREAL_ENDPOINT",
        "SURREAL_URL",
        "SURREALDB_URL",
        "SURREAL_HOST",
    ]);
    if client {
        return None;
    }
    if server(&[
        "POSTGRES_PASSWORD",
        "POSTGRES_USER",
        "POSTGRES_DB",
        "POSTGRES_PASSWORD_FILE",
        "POSTGRES_INITDB_ARGS",
        "PGDATA",
    ]) {
        return found(Seen::Postgres, "its POSTGRES_* variables");
    }
    if server(&[
        "MYSQL_ROOT_PASSWORD",
        "MYSQL_DATABASE",
        "MYSQL_RANDOM_ROOT_PASSWORD",
        "MYSQL_ALLOW_EMPTY_PASSWORD",
        "MARIADB_ROOT_PASSWORD",
        "MARIADB_DATABASE",
        "MARIADB_RANDOM_ROOT_PASSWORD",
        "MYSQL_ROOT_PASSWORD_FILE",
        "MARIADB_ROOT_PASSWORD_FILE",
    ]) {
        return found(Seen::Mysql, "its MYSQL_*/MARIADB_* variables");
    }
    if keys(&["MONGO_INITDB_"]) {
        return found(Seen::Mongodb, "its MONGO_INITDB_* variables");
    }
    // The other servers' own setup variables (their official images' names).
    for (vars, kind, how) in [
        (
            &[
                "SURREAL_USER",
                "SURREAL_PASS",
                "SURREAL_PATH",
                "SURREAL_BIND",
            ][..],
            Seen::Surrealdb,
            "its SURREAL_* variables",
        ),
        (
            &["COUCHDB_USER", "COUCHDB_PASSWORD"][..],
            Seen::Couchdb,
            "its COUCHDB_* variables",
        ),
        (
            &[
                "DOCKER_INFLUXDB_INIT_MODE",
                "DOCKER_INFLUXDB_INIT_BUCKET",
                "INFLUXDB_DB",
            ][..],
            Seen::Influxdb,
            "its INFLUXDB variables",
        ),
        (&["NEO4J_AUTH"][..], Seen::Neo4j, "its NEO4J_AUTH variable"),
        (
            &["ARANGO_ROOT_PASSWORD", "ARANGO_NO_AUTH"][..],
            Seen::Arangodb,
            "its ARANGO_* variables",
        ),
        (
            &["CASSANDRA_CLUSTER_NAME", "CASSANDRA_SEEDS"][..],
            Seen::Cassandra,
            "its CASSANDRA_* variables",
        ),
    ] {
        if server(vars) {
            return found(kind, how);
        }
    }
    if let Some(how) = surreal_start(svc) {
        return found(Seen::Surrealdb, &how);
    }
    if let Some(h) = &svc.healthcheck {
        let test = h.test.join(" ");
        if test.contains("pg_isready") {
            return found(Seen::Postgres, "its healthcheck (pg_isready)");
        }
        if test.contains("mysqladmin")
            || test.contains("healthcheck.sh")
            || test.contains("mariadb-admin")
        {
            return found(Seen::Mysql, "its healthcheck (mysqladmin)");
        }
        if test.contains("mongosh") || test.contains("mongo ") {
            return found(Seen::Mongodb, "its healthcheck (mongosh)");
        }
        if test.contains("redis-cli") || test.contains("valkey-cli") {
            return found(Seen::Redis, "its healthcheck (redis-cli)");
        }
    }
    for m in &svc.volumes {
        let t = m.target.trim_end_matches('/');
        let kind = match t {
            t if t.starts_with("/var/lib/postgresql") => Seen::Postgres,
            "/var/lib/mysql" => Seen::Mysql,
            "/data/db" | "/data/configdb" => Seen::Mongodb,
            "/var/lib/clickhouse" => Seen::Clickhouse,
            "/opt/couchdb/data" => Seen::Couchdb,
            "/var/lib/influxdb" | "/var/lib/influxdb2" => Seen::Influxdb,
            "/var/lib/cassandra" | "/var/lib/scylla" => Seen::Cassandra,
            "/cockroach/cockroach-data" => Seen::Cockroachdb,
            "/var/lib/arangodb3" => Seen::Arangodb,
            "/usr/share/elasticsearch/data" | "/usr/share/opensearch/data" | "/meili_data" => {
                Seen::Search
            }
            _ => continue,
        };
        return found(kind, &format!("where it keeps its data ({})", m.target));
    }
    None
}

/// `surreal start … rocksdb:/data/db` (or `surrealkv:`, `tikv:`, `file:`): the SurrealDB
/// server's command line, whatever its image is called.
fn surreal_start(svc: &Service) -> Option<String> {
    let words: Vec<String> = match svc.command.as_ref()? {
        super::compose::Command::String(s) => s.split_whitespace().map(str::to_string).collect(),
        super::compose::Command::List(l) => l.clone(),
    };
    let start = words
        .iter()
        .position(|w| w == "start")
        .filter(|&i| i == 0 || words[i - 1].ends_with("surreal"))?;
    words[start + 1..]
        .iter()
        .find(|w| {
            ["rocksdb:", "surrealkv:", "tikv:", "file:", "fdb:"]
                .iter()
                .any(|p| w.starts_with(p))
        })
        .map(|w| format!("its command (`start … {w}`)"))
}

/// Whether the setting a service was named by (`how`: "the app's DATABASE_URL") is the app's
/// database setting: `DATABASE_URL`, `DB_URL`, `DB_HOST`, `APP_DATABASE_URL`… by its words.
pub fn names_a_database(how: &str) -> bool {
    let key = how.rsplit(' ').next().unwrap_or(how).to_uppercase();
    key.contains("DATABASE") || key.split('_').any(|w| w == "DB")
}

/// The services the app names in its connection settings, with the kind the setting says:
/// `DATABASE_URL=postgres://…@db/…`, or `DB_HOST=db` with `DB_TYPE=postgres`.
pub fn named_by_app(
    compose: &ComposeFile,
    app_env: &IndexMap<String, String>,
) -> Vec<(String, Option<Seen>, String)> {
    let scheme_kind = |s: &str| match s.to_lowercase().as_str() {
        s if s.starts_with("postgres") || s == "pgsql" || s == "pg" => Some(Seen::Postgres),
        s if s.starts_with("mysql") || s.starts_with("mariadb") => Some(Seen::Mysql),
        s if s.starts_with("mongodb") => Some(Seen::Mongodb),
        s if s.starts_with("surrealdb") => Some(Seen::Surrealdb),
        s if s.starts_with("redis") || s.starts_with("rediss") => Some(Seen::Redis),
        _ => None,
    };
    let type_hint = app_env
        .iter()
        .filter(|(k, _)| {
            let k = k.to_uppercase();
            [
                "TYPE",
                "CLIENT",
                "ENGINE",
                "CONNECTION",
                "DIALECT",
                "DRIVER",
                "VENDOR",
            ]
            .iter()
            .any(|s| k.ends_with(s))
                && (k.contains("DB") || k.contains("DATABASE"))
        })
        .find_map(|(_, v)| scheme_kind(v.trim()));
    let mut out = Vec::new();
    for (key, value) in app_env {
        // scheme://[user[:pass]@]host[:port][/...]
        if let Some((scheme, rest)) = value.split_once("://") {
            let authority = rest.split('/').next().unwrap_or(rest);
            let host_port = authority.rsplit('@').next().unwrap_or(authority);
            let host = host_port.split(':').next().unwrap_or(host_port);
            if compose.services.contains_key(host) {
                // SurrealDB is reached over http:// or ws://: the setting's name says it.
                let by_key = key
                    .to_uppercase()
                    .starts_with("SURREAL")
                    .then_some(Seen::Surrealdb);
                out.push((
                    host.to_string(),
                    scheme_kind(scheme).or(by_key),
                    format!("the app's {key}"),
                ));
            }
            continue;
        }
        let k = key.to_uppercase();
        if k.ends_with("HOST") || k.ends_with("HOSTNAME") || k.ends_with("SERVER") {
            let host = value.split(':').next().unwrap_or(value);
            if compose.services.contains_key(host) {
                let kind = if k.starts_with("POSTGRES") || k.starts_with("PG") {
                    Some(Seen::Postgres)
                } else if k.starts_with("MYSQL") || k.starts_with("MARIADB") {
                    Some(Seen::Mysql)
                } else if k.starts_with("MONGO") {
                    Some(Seen::Mongodb)
                } else if k.starts_with("SURREAL") {
                    Some(Seen::Surrealdb)
                } else if k.starts_with("REDIS") {
                    Some(Seen::Redis)
                } else if k.contains("DB") || k.contains("DATABASE") {
                    type_hint
                } else {
                    None
                };
                out.push((host.to_string(), kind, format!("the app's {key}")));
            }
        }
    }
    out
}

/// Whether a mount can hold a service's own data: writable, not tmpfs, not the Docker
/// socket, not a host device or host config (`/dev/…`, `/etc/localtime`), not a single config
/// file (`./redis.conf:/redis.conf`).
pub fn holds_data(m: &super::compose::Mount) -> bool {
    let Some(source) = m.source.as_deref() else {
        return false;
    };
    let config_file = Path::new(&m.target)
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| {
            [
                "conf",
                "cfg",
                "ini",
                "yaml",
                "yml",
                "json",
                "toml",
                "env",
                "xml",
                "properties",
                "js",
                "php",
                "sh",
            ]
            .contains(&e.to_ascii_lowercase().as_str())
        });
    m.kind != MountKind::Tmpfs
        && !m.read_only
        && !config_file
        && !source.ends_with("docker.sock")
        && !source.starts_with("/etc/")
        && !source.starts_with("/dev/")
        && !source.starts_with("/proc/")
        && !source.starts_with("/sys/")
}

/// The mounts that hold a service's own data (`holds_data`), by source.
pub fn data_mounts(svc: &Service) -> Vec<String> {
    svc.volumes
        .iter()
        .filter(|m| holds_data(m))
        .filter_map(|m| m.source.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compose(text: &str) -> ComposeFile {
        ComposeFile::parse(Path::new("/c.yaml"), text, Path::new("/app"), &|_| None).unwrap()
    }

    fn env_of(svc: &Service) -> IndexMap<String, String> {
        svc.environment
            .iter()
            .map(|(k, v)| (k.clone(), v.clone().unwrap_or_default()))
            .collect()
    }

    #[test]
    fn a_database_is_known_by_what_it_does() {
        let c = compose(
            "services:\n  a:\n    image: myorg/db:15\n    environment: {POSTGRES_PASSWORD: x}\n  b:\n    image: local/thing\n    healthcheck: {test: [CMD-SHELL, pg_isready -U u]}\n  c:\n    image: tensorchord/pgvecto-rs:pg14-v0.2.0\n  d:\n    image: lscr.io/linuxserver/mariadb\n  e:\n    image: private/store\n    volumes: [\"dbdata:/var/lib/mysql\"]\n  f:\n    image: app\n    environment: {DB_HOST: a, DB_PASSWORD: x}\n",
        );
        let kind = |n: &str| sense(&c.services[n], &env_of(&c.services[n])).map(|s| s.kind);
        assert_eq!(kind("a"), Some(Seen::Postgres));
        assert_eq!(kind("b"), Some(Seen::Postgres));
        assert_eq!(kind("c"), Some(Seen::Postgres));
        assert_eq!(kind("d"), Some(Seen::Mysql));
        assert_eq!(kind("e"), Some(Seen::Mysql));
        // A client's settings do not make the app a database.
        assert_eq!(kind("f"), None);
    }

    #[test]
    fn the_apps_connection_settings_name_the_database() {
        let c = compose("services:\n  app: {image: a}\n  pg: {image: x}\n  cache: {image: y}\n");
        let env: IndexMap<String, String> = [
            ("DATABASE_URL", "postgresql://u:p@pg:5432/app"),
            ("REDIS_HOST", "cache"),
            ("OTHER", "http://example.com/"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let named = named_by_app(&c, &env);
        assert_eq!(named[0].0, "pg");
        assert_eq!(named[0].1, Some(Seen::Postgres));
        assert_eq!(
            named[1],
            (
                "cache".to_string(),
                Some(Seen::Redis),
                "the app's REDIS_HOST".to_string()
            )
        );
        let env: IndexMap<String, String> = [("DB_TYPE", "postgres"), ("DB_HOST", "pg")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(named_by_app(&c, &env)[0].1, Some(Seen::Postgres));
    }

    #[test]
    fn databases_hoist_has_no_driver_for_are_known_as_databases() {
        let c = compose(concat!(
            "services:\n",
            "  a: {image: surrealdb/surrealdb:v2.1.4}\n",
            "  b:\n    image: acme/kv:3\n    command: start --log info --user root --pass x rocksdb:/data/db\n",
            "  c:\n    image: acme/kv:3\n    command: [/surreal, start, 'surrealkv:/data/db']\n",
            "  d:\n    image: acme/kv:3\n    environment: {SURREAL_USER: root, SURREAL_PASS: x}\n",
            "  e: {image: 'couchdb:3'}\n",
            "  f:\n    image: acme/tsdb\n    volumes: ['./influx:/var/lib/influxdb2']\n",
            "  g:\n    image: acme/graph\n    environment: {NEO4J_AUTH: neo4j/secret}\n",
            "  h: {image: 'scylladb/scylla:6'}\n",
            "  i: {image: 'cockroachdb/cockroach:v24.1'}\n",
            "  j:\n    image: app\n    environment: {SURREAL_ENDPOINT: 'http://a:8000', SURREAL_USER: root}\n",
            "  k:\n    image: worker\n    command: start --queue default\n",
            "  l: {image: 'redis:7'}\n",
        ));
        let kind = |n: &str| sense(&c.services[n], &env_of(&c.services[n]));
        for (n, want) in [
            ("a", Seen::Surrealdb),
            ("b", Seen::Surrealdb),
            ("c", Seen::Surrealdb),
            ("d", Seen::Surrealdb),
            ("e", Seen::Couchdb),
            ("f", Seen::Influxdb),
            ("g", Seen::Neo4j),
            ("h", Seen::Cassandra),
            ("i", Seen::Cockroachdb),
        ] {
            let s = kind(n).unwrap_or_else(|| panic!("{n} not sensed"));
            assert_eq!(s.kind, want, "{n}");
            assert!(s.kind.is_database(), "{n}");
        }
        assert_eq!(
            kind("b").unwrap().how,
            "its command (`start … rocksdb:/data/db`)"
        );
        // A client of SurrealDB is not one; a worker's `start` is not a server's.
        assert_eq!(kind("j"), None);
        assert_eq!(kind("k"), None);
        assert!(!kind("l").unwrap().kind.is_database());

        // The app reaches SurrealDB over http://: the setting's name says what it is.
        let env: IndexMap<String, String> = [("SURREAL_ENDPOINT", "http://b:8000")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(named_by_app(&c, &env)[0].1, Some(Seen::Surrealdb));
    }
}
