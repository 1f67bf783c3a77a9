use super::*;
use crate::docker::rehearsals::{LABEL, LABEL_OF};

fn images() -> BTreeMap<String, String> {
    BTreeMap::from([("app".to_string(), "ghcr.io/acme/app:2.0".to_string())])
}

fn plan<'a>(
    images: &'a BTreeMap<String, String>,
    copies: &'a BTreeMap<String, String>,
) -> Plan<'a> {
    Plan {
        project: "hoist-rehearsal-1a2b-app",
        of: "app",
        images,
        database_service: Some("db"),
        copies,
        without: empty(),
    }
}

fn empty() -> &'static std::collections::BTreeSet<String> {
    static EMPTY: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    &EMPTY
}

/// A stack shaped like many published ones: a proxy's labels and external network, a bind of
/// uploads, a config file, the Docker socket, a database with a named volume and a fixed name.
fn typical() -> Value {
    json!({
        "name": "app",
        "services": {
            "app": {
                "image": "ghcr.io/acme/app:1.0",
                "container_name": "app",
                "ports": [{"target": 3000, "published": "8080", "host_ip": "127.0.0.1", "protocol": "tcp"}],
                "labels": {"traefik.enable": "true", "traefik.http.routers.app.rule": "Host(`app.example.com`)"},
                "environment": {"VIRTUAL_HOST": "app.example.com", "DB_HOST": "db"},
                "networks": {"proxy": null, "default": {"aliases": ["web"], "ipv4_address": "172.30.0.5"}},
                "volumes": [
                    {"type": "bind", "source": "/srv/app/uploads", "target": "/uploads"},
                    {"type": "bind", "source": "/srv/app/config.yml", "target": "/config.yml"},
                    {"type": "bind", "source": "/var/run/docker.sock", "target": "/var/run/docker.sock"}
                ],
                "build": {"context": "."}
            },
            "db": {
                "image": "postgres:16",
                "container_name": "app-db",
                "volumes": [{"type": "volume", "source": "pgdata", "target": "/var/lib/postgresql/data"}],
                "networks": {"default": null}
            }
        },
        "networks": {
            "default": {"name": "app_default", "ipam": {"config": [{"subnet": "172.30.0.0/16"}]}},
            "proxy": {"name": "proxy", "external": true}
        },
        "volumes": {"pgdata": {"name": "app_pgdata"}},
        "x-common": {"restart": "always"}
    })
}

#[test]
fn nothing_of_the_real_app_is_named_published_or_routed() {
    let images = images();
    let copies = BTreeMap::from([(
        "/srv/app/uploads".to_string(),
        "hoist-rehearsal-1a2b-app-copy-1".to_string(),
    )]);
    let m = model(&typical(), &plan(&images, &copies)).unwrap();
    let j = &m.json;
    assert_eq!(j["name"], "hoist-rehearsal-1a2b-app");
    assert!(j.get("x-common").is_none());
    let app = &j["services"]["app"];
    assert_eq!(app["image"], "ghcr.io/acme/app:2.0");
    for gone in ["container_name", "ports", "build"] {
        assert!(app.get(gone).is_none(), "{gone}: {app}");
    }
    assert_eq!(
        app["labels"],
        json!({ LABEL: "hoist-rehearsal-1a2b-app", LABEL_OF: "app" })
    );
    assert_eq!(app["environment"], json!({"DB_HOST": "db"}));
    assert_eq!(
        app["networks"]["default"],
        json!({"aliases": ["web"]}),
        "the fixed address goes, the alias stays"
    );
    // Uploads: the copy; the config file: read-only; the socket: not given.
    let mounts = app["volumes"].as_array().unwrap();
    assert_eq!(mounts.len(), 2, "{mounts:?}");
    assert_eq!(mounts[0]["type"], "volume");
    let key = mounts[0]["source"].as_str().unwrap();
    assert_eq!(
        j["volumes"][key],
        json!({"external": true, "name": "hoist-rehearsal-1a2b-app-copy-1"})
    );
    assert_eq!(mounts[1]["source"], "/srv/app/config.yml");
    assert_eq!(mounts[1]["read_only"], true);
    // Networks and volumes are the rehearsal's own: no name, nothing external, internal.
    for net in ["default", "proxy"] {
        assert_eq!(
            j["networks"][net],
            json!({"internal": true, "labels": { LABEL: "hoist-rehearsal-1a2b-app", LABEL_OF: "app" }}),
            "{net}"
        );
    }
    assert_eq!(
        j["volumes"]["pgdata"],
        json!({"labels": { LABEL: "hoist-rehearsal-1a2b-app", LABEL_OF: "app" }})
    );
    let db = &j["services"]["db"];
    assert!(db.get("container_name").is_none());
    assert_eq!(db["image"], "postgres:16");
    assert_eq!(db["cpu_shares"], 256);
    assert_eq!(db["oom_score_adj"], 1000);
    let notes = m.notes.join("\n");
    for said in [
        "Docker socket",
        "read-only",
        "labels are left out",
        "VIRTUAL_HOST",
        "network proxy (outside the stack)",
        "no way out",
        "no port is published",
    ] {
        assert!(notes.contains(said), "{said}: {notes}");
    }
}

#[test]
fn the_whole_model_never_names_a_real_network_or_volume() {
    let images = images();
    let copies = BTreeMap::new();
    let m = model(&typical(), &plan(&images, &copies)).unwrap();
    let text = m.json.to_string();
    for real in [
        "app_default",
        "app_pgdata",
        "\"proxy\",\"external\"",
        "172.30.",
    ] {
        assert!(!text.contains(real), "{real} in {text}");
    }
}

#[test]
fn a_database_kept_in_a_host_directory_starts_empty_for_the_dump() {
    let config = json!({
        "services": {
            "db": {"image": "mariadb:11", "volumes": [
                {"type": "bind", "source": "/srv/app/mysql", "target": "/var/lib/mysql"}
            ]}
        }
    });
    let (images, copies) = (BTreeMap::new(), BTreeMap::new());
    let m = model(&config, &plan(&images, &copies)).unwrap();
    let mount = &m.json["services"]["db"]["volumes"][0];
    assert_eq!(mount["type"], "volume");
    let key = mount["source"].as_str().unwrap();
    assert_eq!(
        m.json["volumes"][key],
        json!({"labels": { LABEL: "hoist-rehearsal-1a2b-app", LABEL_OF: "app" }})
    );
    assert!(!m.json.to_string().contains("/srv/app/mysql"));
    // No network was named: the default one is the rehearsal's, and internal.
    assert_eq!(m.json["networks"]["default"]["internal"], true);
}

#[test]
fn data_there_was_no_room_to_copy_starts_empty_and_never_is_the_real_directory() {
    let images = images();
    let copies = BTreeMap::new();
    let without = std::collections::BTreeSet::from(["/srv/app/uploads".to_string()]);
    let plan = Plan {
        without: &without,
        ..plan(&images, &copies)
    };
    let m = model(&typical(), &plan).unwrap();
    let mount = &m.json["services"]["app"]["volumes"][0];
    assert_eq!(mount["type"], "volume", "{mount}");
    assert!(!m.json.to_string().contains("/srv/app/uploads"));
}

#[test]
fn a_named_data_volume_is_the_copy_made_beforehand() {
    let config = json!({
        "services": {
            "app": {"image": "app:1", "volumes": [
                {"type": "volume", "source": "uploads", "target": "/data"}
            ]}
        },
        "volumes": {"uploads": {"name": "shared-uploads", "external": true}}
    });
    let images = images();
    let copies = BTreeMap::from([("uploads".to_string(), "rehearsal-copy-uploads".to_string())]);
    let m = model(&config, &plan(&images, &copies)).unwrap();
    assert_eq!(
        m.json["volumes"]["uploads"],
        json!({"external": true, "name": "rehearsal-copy-uploads"})
    );
    assert_eq!(m.json["services"]["app"]["volumes"][0]["source"], "uploads");
}

#[test]
fn a_volume_that_is_not_data_is_said_to_start_empty() {
    let config = json!({
        "services": {
            "search": {"image": "meilisearch:1", "volumes": [
                {"type": "volume", "source": "index", "target": "/meili_data"}
            ]}
        },
        "volumes": {"index": {}}
    });
    let (images, copies) = (BTreeMap::new(), BTreeMap::new());
    let m = model(&config, &plan(&images, &copies)).unwrap();
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("volume index (search) starts empty")),
        "{:?}",
        m.notes
    );
}

#[test]
fn what_would_share_the_real_apps_network_or_volumes_is_refused() {
    let (images, copies) = (BTreeMap::new(), BTreeMap::new());
    let host = json!({"services": {"app": {"image": "a:1", "network_mode": "host"}}});
    let e = model(&host, &plan(&images, &copies)).unwrap_err();
    assert!(e.contains("network_mode: host"), "{e}");
    let shared =
        json!({"services": {"vpn": {"image": "a:1", "network_mode": "container:gluetun"}}});
    let e = model(&shared, &plan(&images, &copies)).unwrap_err();
    assert!(e.contains("gluetun"), "{e}");
    let from = json!({"services": {"app": {"image": "a:1", "volumes_from": ["container:old"]}}});
    let e = model(&from, &plan(&images, &copies)).unwrap_err();
    assert!(e.contains("container old"), "{e}");
    // Sharing a service of the same stack is fine: it is the rehearsal's service too.
    let sidecar = json!({"services": {
        "vpn": {"image": "a:1"},
        "app": {"image": "b:1", "network_mode": "service:vpn"}
    }});
    let m = model(&sidecar, &plan(&images, &copies)).unwrap();
    assert_eq!(m.json["services"]["app"]["network_mode"], "service:vpn");
}

#[test]
fn ports_published_are_read_in_each_way_compose_writes_them() {
    let config = json!({"services": {
        "web": {"ports": [
            {"target": 80, "published": "8080"},
            {"target": 443, "published": 8443},
            {"target": 9000, "published": "9000-9001"},
            {"target": 53}
        ]}
    }});
    let p = published(&config);
    let ports: Vec<(u16, u16)> = p.iter().map(|p| (p.host_port, p.container_port)).collect();
    assert_eq!(ports, [(8080, 80), (8443, 443), (9000, 9000)]);
}

#[test]
fn a_check_through_a_published_port_goes_to_the_copys_container() {
    let published = vec![Published {
        service: "api".into(),
        host_port: 9933,
        container_port: 8000,
    }];
    let address = |s: &str| (s == "api").then(|| "172.20.0.4".to_string());
    assert_eq!(
        rehearsal_url("http://127.0.0.1:9933/health", &published, &address).as_deref(),
        Some("http://172.20.0.4:8000/health")
    );
    assert_eq!(
        rehearsal_url("http://localhost:9933", &published, &address).as_deref(),
        Some("http://172.20.0.4:8000/")
    );
    // A domain goes to the real app (through its proxy); a port nobody publishes: unknown.
    assert_eq!(
        rehearsal_url("https://app.example.com/health", &published, &address),
        None
    );
    assert_eq!(
        rehearsal_url("http://127.0.0.1:1234/", &published, &address),
        None
    );
}

#[test]
fn the_pinned_variable_reaches_the_environment_of_the_services_that_read_it() {
    let mut m = json!({"services": {
        "api": {"environment": {"APP_VERSION": "1.2", "DB": "x"}},
        "db": {"environment": {"POSTGRES_DB": "app"}},
        "bare": {"image": "x"},
    }});
    assert!(set_environment(&mut m, "APP_VERSION", "1.3"));
    assert_eq!(m["services"]["api"]["environment"]["APP_VERSION"], "1.3");
    assert_eq!(m["services"]["api"]["environment"]["DB"], "x");
    assert_eq!(m["services"]["db"]["environment"].get("APP_VERSION"), None);
    assert!(!set_environment(&mut m, "OTHER", "1"));
}
