//! RESTORE.md: how to restore this backup by hand with standard tools, should hoist not be there.
use std::fmt::Write as _;

use super::Manifest;

pub fn render(m: &Manifest) -> String {
    let mut t = String::new();
    let dir = &m.project_dir;
    let _ = writeln!(t, "# Restoring backup {}\n", m.id);
    let pinned = if m.version_variable.is_empty() {
        format!(
            "the image tag `{}` in the compose file",
            m.pinned.as_deref().unwrap_or("")
        )
    } else {
        format!(
            "`{}={}` in .env",
            m.version_variable,
            m.pinned.as_deref().unwrap_or("")
        )
    };
    let _ = writeln!(
        t,
        "Taken {} by hoist {} from project `{}` in `{dir}`, running version {} ({pinned}).\n",
        m.created_at,
        m.hoist_version,
        m.project,
        m.running_version.as_deref().unwrap_or("unknown"),
    );
    if let Some(stack) = &m.swarm_stack {
        let _ = writeln!(
            t,
            "**This app ran as the Docker Swarm stack `{stack}`, not as a Compose project.** Never run `docker compose up -d` for it: that starts a second copy of the app beside the stack. Read the steps below with Swarm's commands in place of Compose's:

- `docker compose stop SERVICE` is `docker service scale {stack}_SERVICE=0` (note its replicas first: `docker service ls`);
- `docker compose exec -T SERVICE …` is `docker exec -i $(docker ps -q -f label=com.docker.swarm.service.name={stack}_SERVICE | head -n 1) …`, on the node that runs its task (`docker service ps {stack}_SERVICE`);
- `docker compose up -d` is `set -a; . ./.env; set +a; docker stack deploy -c compose.yaml {stack}` (a stack deploy reads your shell's variables, not .env), which also gives each service back the replicas the file says.
"
        );
    }
    let _ = writeln!(
        t,
        "`hoist rollback` does all of this for you and keeps the current data aside. By hand, as root, in `{dir}`:\n"
    );
    let _ = writeln!(
        t,
        "0. Check the files are intact (compare with `manifest.json`):\n\n   ```sh\n   sha256sum {}\n   ```\n",
        m.files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );
    // A stack without a `.env` has no copy of one to put back.
    let env_back = if m.files.iter().any(|f| f.kind == "env") {
        "   cp BACKUP_DIR/env .env\n"
    } else {
        ""
    };
    let _ = writeln!(
        t,
        "1. Stop the app, keep the database running:\n\n   ```sh\n   docker compose stop {}\n   ```\n",
        m.services.join(" ")
    );
    let mut step = 2;
    for f in m.files.iter().filter(|f| f.kind == "archive") {
        put_back(&mut t, f, step, &m.project);
        step += 1;
    }
    if let Some(db) = &m.database {
        step = database_step(&mut t, db, step);
    }
    let version = m
        .running_version
        .as_deref()
        .or(m.pinned.as_deref())
        .unwrap_or("VERSION");
    if m.version_variable.is_empty() {
        // The version is a literal tag in a compose file: the copies put it back.
        let copies: Vec<String> = m
            .files
            .iter()
            .filter(|f| f.kind == "compose")
            .filter_map(|f| {
                Some(format!(
                    "   cp BACKUP_DIR/{} {}",
                    f.name,
                    f.source.as_deref()?
                ))
            })
            .collect();
        let _ = writeln!(
            t,
            "{step}. Put back the compose files as they were (the image tag in them pins {version}) and start everything:\n\n   ```sh\n{}\n{env_back}   docker compose up -d\n   ```\n",
            copies.join("\n")
        );
    } else {
        let _ = writeln!(
            t,
            "{step}. Pin the version the backup was taken at and start everything:\n\n   ```sh\n{}   docker compose up -d\n   ```\n",
            if env_back.is_empty() {
                format!("   echo '{}={version}' >> .env\n", m.version_variable)
            } else {
                format!(
                    "   cp BACKUP_DIR/env .env      # or set {}={version} in .env by hand\n",
                    m.version_variable
                )
            },
        );
    }
    beside_section(&mut t, m);
    let _ = writeln!(
        t,
        "BACKUP_DIR is the directory this file is in. The files are readable with `gunzip` and `tar` alone. A `.gz` file here may hold several gzip members one after another (a large archive is written in 64 MB pieces), which `gzip`, `tar` and busybox read as one; a program that reads only the first member (Python's `tarfile` in stream mode, `r|gz`) stops early: use `tar`, or `r:gz` in Python."
    );
    t
}

/// The data of services beside the app: in the backup, not restored by a rollback.
fn beside_section(t: &mut String, m: &super::Manifest) {
    let beside: Vec<&super::ManifestFile> = m.files.iter().filter(|f| f.kind == "beside").collect();
    if beside.is_empty() {
        return;
    }
    let _ = writeln!(
        t,
        "## Data of services beside the app\n\nThese services were not upgraded, and `hoist rollback` leaves their data as it is. Each copy was taken with the service stopped (or, for Redis, after a SAVE). To put one back, stop that service first (`docker compose stop SERVICE`), then:\n"
    );
    for (i, f) in beside.iter().enumerate() {
        let _ = writeln!(t, "Service `{}`:\n", f.service.as_deref().unwrap_or("?"));
        put_back(t, f, u32::try_from(i + 1).unwrap_or(1), &m.project);
    }
}

/// Step `step`: put back the archive `f` into the directory or volume it came from, the
/// current content kept aside first.
fn put_back(t: &mut String, f: &super::ManifestFile, step: u32, project: &str) {
    let source = f.source.as_deref().unwrap_or("");
    if source.starts_with('/') {
        let _ = writeln!(
            t,
            "{step}. Put back `{source}` (mounted at `{}`). Move the current content aside first, never delete it:\n\n   ```sh\n   mv {source} {source}.before-restore\n   mkdir -p {source}\n   tar xzf BACKUP_DIR/{} -C {source}\n   ```\n",
            f.target.as_deref().unwrap_or(""),
            f.name
        );
    } else {
        let _ = writeln!(
            t,
            "{step}. Put back the volume `{source}` (mounted at `{}`), through throwaway containers. Copy its current content into a new volume first, never delete it, then empty it and extract the archive:\n\n   ```sh\n   docker volume create {p}_{source}-before-restore\n   docker run --rm -v {p}_{source}:/volume -v {p}_{source}-before-restore:/aside IMAGE sh -c 'cp -a /volume/. /aside/ && find /volume -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +'\n   docker run --rm -v {p}_{source}:/restore -v BACKUP_DIR:/backup:ro IMAGE tar xzf /backup/{} -C /restore\n   ```\n   (`docker volume ls` shows the volume's full name; any image with `sh`, `cp` and `tar` will do, e.g. the app's.)\n",
            f.target.as_deref().unwrap_or(""),
            f.name,
            p = project,
        );
    }
}

/// The database's restore, as step `step`; returns the next step's number.
fn database_step(t: &mut String, db: &super::ManifestDatabase, mut step: u32) -> u32 {
    let svc = &db.service;
    match db.kind.as_str() {
        "postgres" => {
            let _ = writeln!(
                t,
                "{step}. Keep the current database aside under another name, then restore into an EMPTY database (loading a dump into a non-empty one mixes old and new):\n\n   ```sh\n   docker compose exec -T {svc} psql -U {user} -d postgres -c \"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()\" -c 'ALTER DATABASE \"{name}\" RENAME TO \"{name}_before_restore\"' -c 'CREATE DATABASE \"{name}\" OWNER \"{user}\"'\n   gunzip -c BACKUP_DIR/database.sql.gz | docker compose exec -T {svc} psql -U {user} -d {name} --single-transaction -v ON_ERROR_STOP=1\n   ```\n",
                user = db.user,
                name = db.name
            );
            step += 1;
        }
        "mysql" => {
            let _ = writeln!(
                t,
                "{step}. Keep the current database aside, then restore into an EMPTY database:\n\n   ```sh\n   docker compose exec -T {svc} sh -c 'mariadb-dump -uroot -p\"${{MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}}\" {name}' | gzip > {name}-before-restore.sql.gz\n   docker compose exec -T {svc} sh -c 'mariadb -uroot -p\"${{MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}}\" -e \"DROP DATABASE {name}; CREATE DATABASE {name}\"'\n   gunzip -c BACKUP_DIR/database.sql.gz | docker compose exec -T {svc} sh -c 'mariadb -uroot -p\"${{MARIADB_ROOT_PASSWORD:-$MYSQL_ROOT_PASSWORD}}\" {name}'\n   ```\n   (`mysqldump` and `mysql` instead of `mariadb-dump` and `mariadb` on MySQL images.)\n",
                name = db.name
            );
            step += 1;
        }
        "command" => {
            let command = db.restore_command.clone().unwrap_or_default();
            let _ = writeln!(
                t,
                "{step}. Keep the current database aside (run the dump command of your settings, `x-hoist.database.dump`, the same way, into a file), then restore with the settings' restore command, which replaces the database with the dump read on its standard input (`***` stands for a secret of your `.env`: put it back before you run it):\n\n   ```sh\n   gunzip -c BACKUP_DIR/database.dump.gz | docker compose exec -T {svc} {command}\n   ```\n",
            );
            step += 1;
        }
        "surrealdb" => {
            let ns = db.namespace.as_deref().unwrap_or("NAMESPACE");
            let port = db.port.unwrap_or(8000);
            let conn = format!(
                "--endpoint http://localhost:{port} --user {} --pass \"$SURREAL_PASS\" --ns {ns}",
                db.user
            );
            let _ = writeln!(
                t,
                "{step}. Keep the current database aside as an export, then EMPTY it and import (an import into a database that is not empty keeps what is there and mixes old and new). Set SURREAL_PASS to the server's password first; the official image has the client at `/surreal` (elsewhere it may be `surreal` on the PATH). Check that the kept export is not empty before you go on:\n\n   ```sh\n   set -o pipefail   # a failed export must not leave a file that looks like one\n   docker compose exec -T {svc} /surreal export {conn} --db {name} - | gzip > {name}-before-restore.surql.gz\n   echo 'REMOVE DATABASE IF EXISTS {name}; DEFINE DATABASE {name};' | docker compose exec -T {svc} /surreal sql {conn}\n   gunzip -c BACKUP_DIR/database.surql.gz | docker compose exec -T {svc} /surreal import {conn} --db {name} /dev/stdin\n   ```\n",
                name = db.name
            );
            step += 1;
        }
        _ => {}
    }
    if db.kind == "surrealdb" {
        let _ = writeln!(
            t,
            "   Afterwards the revision should be `{}`, and the tables should hold the record counts listed in `manifest.json`.\n",
            db.revision.as_deref().unwrap_or("unknown")
        );
        return step;
    }
    if db.kind == "command" {
        let _ = writeln!(
            t,
            "   Afterwards the settings' revision command should print `{}`.\n",
            db.revision.as_deref().unwrap_or("unknown")
        );
        return step;
    }
    let _ = writeln!(
        t,
        "   Afterwards the schema revision should be `{}` ({}), and the tables should hold the row counts listed in `manifest.json`.\n",
        db.revision.as_deref().unwrap_or("unknown"),
        db.migrations.as_deref().unwrap_or("no migrations table")
    );
    step
}
