//! A database that only the running container shows. Detection reads the files; a service whose
//! image has a neutral name, bakes its server variables in and is not given a command (a
//! derived `acme/store:1` that is PostgreSQL underneath, SurrealDB with its `start` in the
//! image's CMD) is taken for a service beside the app, and an upgrade would run without a dump
//! of it. The container's own process and its image's title label tell, so they are asked.
use super::{Finding, Level};
use crate::docker::containers::ContainerInfo;
use crate::probe::facts::Facts;

/// Server programs, by the name they run as, and what they are in words.
const SERVERS: [(&str, &str, &str); 10] = [
    ("postgres", "PostgreSQL", "postgres"),
    ("postmaster", "PostgreSQL", "postgres"),
    ("mysqld", "MySQL", "mysql"),
    ("mariadbd", "MariaDB", "mariadb"),
    ("mongod", "MongoDB", ""),
    ("influxd", "InfluxDB", ""),
    ("arangod", "ArangoDB", ""),
    ("rethinkdb", "RethinkDB", ""),
    ("couchdb", "CouchDB", ""),
    ("neo4j", "Neo4j", ""),
];

/// Which database `c` runs, in words, with the evidence and the `kind` hoist would take for it
/// ("" when it has no driver).
fn database_in(c: &ContainerInfo) -> Option<(&'static str, String, &'static str)> {
    let base: Vec<&str> = c
        .process
        .iter()
        .map(|w| w.rsplit('/').next().unwrap_or(w))
        .collect();
    let shown = crate::redact::command_line(&c.process);
    let shown: String = shown.chars().take(80).collect();
    // The program itself, or what an entrypoint script is handed (`docker-entrypoint.sh postgres`).
    for word in base.iter().take(2) {
        if let Some((_, name, kind)) = SERVERS.iter().find(|(p, _, _)| p == word) {
            return Some((name, format!("its process `{shown}`"), kind));
        }
    }
    if base.first().is_some_and(|w| w.ends_with("surreal")) && base.get(1) == Some(&"start") {
        return Some(("SurrealDB", format!("its process `{shown}`"), "surrealdb"));
    }
    // The whole title, not a part: `postgres_exporter` is no database.
    let title = c.image_title.as_deref()?;
    let lower = title.trim().to_ascii_lowercase();
    let lower = lower.trim_end_matches(" server");
    [
        ("postgres", "PostgreSQL", "postgres"),
        ("postgresql", "PostgreSQL", "postgres"),
        ("mariadb", "MariaDB", "mariadb"),
        ("mysql", "MySQL", "mysql"),
        ("surrealdb", "SurrealDB", "surrealdb"),
        ("mongodb", "MongoDB", ""),
    ]
    .iter()
    .find(|(t, _, _)| lower == *t)
    .map(|(_, name, kind)| (*name, format!("its image's title {title:?}"), *kind))
}

/// A Fail when a service the files took for one beside the app runs a database and the stack
/// has none (an upgrade would run without a dump); a Warn when the stack has another one.
pub fn finding(facts: &Facts) -> Option<Finding> {
    let view = &facts.view;
    if view.database_declined {
        return None;
    }
    let running = facts.docker.as_ref().ok()?;
    let known: Vec<&str> = view
        .database
        .iter()
        .map(|d| d.service.as_str())
        .chain(view.unsupported_database.iter().map(|d| d.service.as_str()))
        .collect();
    let (service, name, how, kind) = running.containers.iter().find_map(|c| {
        // One the files show beside the app is said there already.
        let beside = view.beside.iter().any(|b| b.service == c.service);
        if !c.is_running()
            || view.upgraded.contains(&c.service)
            || known.contains(&c.service.as_str())
            || (beside && view.database.is_some())
        {
            return None;
        }
        database_in(c).map(|(name, how, kind)| (c.service.clone(), name, how, kind))
    })?;
    let settings = match kind {
        "" => format!(
            "`x-hoist: {{database: {{service: {service}, kind: command, dump: [...], restore: [...], revision: [...]}}}}` (hoist has no driver for {name})"
        ),
        "surrealdb" => format!(
            "`x-hoist: {{database: {{service: {service}, kind: surrealdb, namespace: ..., name: ...}}}}`"
        ),
        kind => format!("`x-hoist: {{database: {{service: {service}, kind: {kind}}}}}`"),
    };
    Some(match &view.database {
        None => Finding::new(
            "database",
            Level::Fail,
            format!(
                "service {service} runs {name} ({how}), though nothing in the compose file says so: hoist took it for a service beside the app, and an upgrade would run without a dump of it, so hoist will not start one. Name it with {settings}, or set `x-hoist: {{database: none}}` if the app keeps nothing in it"
            ),
        ),
        Some(db) => Finding::new(
            "database",
            Level::Warn,
            format!(
                "service {service} also runs {name} ({how}); hoist dumps only the database of service {}, so {service}'s is not in the backup as a dump. If the app keeps data there, name it with {settings} instead",
                db.service
            ),
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(process: &[&str], title: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            id: "x".into(),
            name: "x".into(),
            service: "store".into(),
            number: 1,
            state: "running".into(),
            health: None,
            exit_code: 0,
            restart_count: 0,
            started_at: None,
            finished_at: None,
            image: "acme/store:1".into(),
            image_id: String::new(),
            digest: None,
            version_label: None,
            addresses: Vec::new(),
            working_dir: None,
            config_files: None,
            env_file: None,
            mounts: Vec::new(),
            stop_timeout: None,
            process: process.iter().map(|s| s.to_string()).collect(),
            image_title: title.map(str::to_string),
        }
    }

    #[test]
    fn the_process_or_the_whole_title_tells_a_database() {
        let kind = |p: &[&str], t: Option<&str>| database_in(&container(p, t)).map(|d| d.0);
        assert_eq!(
            kind(&["docker-entrypoint.sh", "postgres"], None),
            Some("PostgreSQL")
        );
        assert_eq!(
            kind(&["/usr/sbin/mariadbd", "--user=mysql"], None),
            Some("MariaDB")
        );
        assert_eq!(
            kind(&["/surreal", "start", "rocksdb:/d"], None),
            Some("SurrealDB")
        );
        assert_eq!(kind(&["mongod", "--bind_ip_all"], None), Some("MongoDB"));
        assert_eq!(
            kind(&["/app/server"], Some("MariaDB Server")),
            Some("MariaDB")
        );
        // Neither a client nor an exporter is a database.
        assert_eq!(
            kind(&["postgres_exporter"], Some("postgres_exporter")),
            None
        );
        assert_eq!(kind(&["python", "-m", "app", "postgres"], None), None);
        assert_eq!(kind(&["redis-server"], Some("Redis")), None);
    }
}
