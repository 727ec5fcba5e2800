//! Loading as a whole: defaults, profiles, precedence, errors, printing.

use super::knobs::{GIB, MIB};
use super::*;
use std::io;

const ID_A: &str = "e11b7ba139dda67198474e88ca2bd0e8a056b70441e22d309424382c0a73a72a";
const ID_B: &str = "d93cbadae4b8b83ed93cbadae4b8b83ed93cbadae4b8b83ed93cbadae4b8b83e";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Loads with `file` as the text of whatever file the flags or environment name.
fn load(o: &ConfigOverrides, e: &[(&str, &str)], file: &str) -> Result<NodeConfig, ConfigError> {
    NodeConfig::load_with(o, &env(e), |_| Ok(file.to_owned()))
}

/// Loads with a file named `ronode.toml` holding `file`.
fn with_file(file: &str) -> Result<NodeConfig, ConfigError> {
    load(&file_flag(), &[], file)
}

fn file_flag() -> ConfigOverrides {
    ConfigOverrides {
        config: Some("ronode.toml".into()),
        ..ConfigOverrides::default()
    }
}

fn profile(p: Profile) -> NodeConfig {
    let o = ConfigOverrides {
        profile: Some(p),
        ..ConfigOverrides::default()
    };
    load(&o, &[], "").unwrap()
}

fn err(result: Result<NodeConfig, ConfigError>) -> ConfigError {
    match result {
        Ok(c) => panic!("loaded, expected an error: {c:?}"),
        Err(e) => e,
    }
}

#[test]
fn defaults_are_valid_and_as_documented() {
    let c = NodeConfig::default();
    c.validate().unwrap();
    assert_eq!(c, load(&ConfigOverrides::default(), &[], "").unwrap());
    assert_eq!(c.listen, "127.0.0.1:9500".parse().unwrap());
    assert_eq!(c.admin, "127.0.0.1:9600".parse().unwrap());
    assert_eq!(c.data_dir, PathBuf::from("./ronode-data"));
    assert_eq!((c.shards, c.pin, c.amnesia), (0, true, false));
    assert_eq!(c.pq_mode, PqMode::Hybrid);
    assert_eq!((c.identity.as_ref(), c.cap_key.as_ref()), (None, None));
    assert_eq!(c.drain_timeout_ms, 5_000);
    assert!(c.peers.is_empty());
    assert_eq!(c.engine.io_memory_bytes, 512 * 1024);
    // 2 shards x 3 rings fit the 8 MiB `ulimit -l` of FEASIBILITY.md.
    assert!(2 * 3 * c.engine.io_memory_bytes <= 8 * MIB);
    let s = &c.session;
    assert_eq!(
        (
            s.handshake_timeout_ms,
            s.read_timeout_ms,
            s.write_timeout_ms
        ),
        (3_000, 5_000, 5_000)
    );
    assert_eq!((s.idle_timeout_ms, s.inflight_frames), (30_000, 64));
    assert_eq!((s.chunk_bytes, s.max_frame), (65_536, 1_048_576));
    assert_eq!(c.objects.max_bytes, 256 * MIB);
    assert_eq!(
        (c.objects.put_policy, c.objects.get_policy),
        (Policy::Token, Policy::Open)
    );
    assert_eq!(c.store.kind, StoreKind::Disk);
    assert_eq!(c.store.capacity_bytes, 8 * GIB);
    assert_eq!(c.queues.work, 512);
}

#[test]
fn profiles_are_valid_and_differ_as_intended() {
    let d = NodeConfig::default();
    let micro = profile(Profile::Micronode);
    micro.validate().unwrap();
    assert!(micro.amnesia);
    assert_eq!(micro.store.kind, StoreKind::Ram);
    assert_eq!(micro.store.capacity_bytes, 256 * MIB);
    assert!(micro.session.max_conns < d.session.max_conns);
    assert!(micro.session.chunk_bytes < d.session.chunk_bytes);
    assert!(micro.queues.work < d.queues.work);
    assert!(micro.queues.mesh < d.queues.mesh);
    assert!(micro.objects.max_bytes < d.objects.max_bytes);

    let macro_ = profile(Profile::Macronode);
    macro_.validate().unwrap();
    assert!(!macro_.amnesia);
    assert_eq!(macro_.store.kind, StoreKind::Disk);
    assert!(macro_.store.capacity_bytes > d.store.capacity_bytes);
    assert!(macro_.session.max_conns > d.session.max_conns);
    assert!(macro_.queues.work > d.queues.work);
    assert!(macro_.queues.mesh > d.queues.mesh);
    assert!(macro_.objects.max_bytes > d.objects.max_bytes);
    // Neither profile opens the node to the network by itself.
    for c in [&micro, &macro_] {
        assert_eq!((c.listen, c.admin), (d.listen, d.admin));
    }
}

#[test]
fn profile_text_is_plain_known_keys() {
    for p in Profile::ALL {
        let entries = layers::document(p.path(), p.toml(), &Source::Profile(p)).unwrap();
        assert!(!entries.is_empty(), "{p}");
        assert_eq!(p.name().parse::<Profile>(), Ok(p));
    }
}

#[test]
fn each_layer_beats_the_one_below() {
    // amnesia: default false < micronode true < file false < env true < flag false.
    let file = "amnesia = false\n[store]\nkind = \"ram\"\n";
    let mut o = ConfigOverrides {
        profile: Some(Profile::Micronode),
        config: Some("ronode.toml".into()),
        amnesia: Some(false),
        ..ConfigOverrides::default()
    };
    let e = [("RONODE_AMNESIA", "true")];
    assert!(!load(&o, &e, file).unwrap().amnesia, "flag");
    o.amnesia = None;
    assert!(load(&o, &e, file).unwrap().amnesia, "environment");
    assert!(!load(&o, &[], file).unwrap().amnesia, "file");
    o.config = None;
    assert!(load(&o, &[], "").unwrap().amnesia, "profile");
    o.profile = None;
    assert!(!load(&o, &[], "").unwrap().amnesia, "default");

    // shards: default 0 < file 1 < env 2 < flag 3.
    let mut o = ConfigOverrides {
        config: Some("ronode.toml".into()),
        shards: Some(3),
        ..ConfigOverrides::default()
    };
    let e = [("RONODE_SHARDS", "2")];
    assert_eq!(load(&o, &e, "shards = 1").unwrap().shards, 3);
    o.shards = None;
    assert_eq!(load(&o, &e, "shards = 1").unwrap().shards, 2);
    assert_eq!(load(&o, &[], "shards = 1").unwrap().shards, 1);
    assert_eq!(
        load(&ConfigOverrides::default(), &[], "").unwrap().shards,
        0
    );

    // session.max_rps (no flag): default 2000 < micronode 500 < file 600 < env 700.
    let o = ConfigOverrides {
        profile: Some(Profile::Micronode),
        config: Some("ronode.toml".into()),
        ..ConfigOverrides::default()
    };
    let file = "[session]\nmax_rps = 600\n";
    let e = [("RONODE_SESSION__MAX_RPS", "700")];
    assert_eq!(load(&o, &e, file).unwrap().session.max_rps, 700);
    assert_eq!(load(&o, &[], file).unwrap().session.max_rps, 600);
    assert_eq!(load(&o, &[], "").unwrap().session.max_rps, 500);
}

#[test]
fn a_layer_replaces_only_the_keys_it_names() {
    let o = ConfigOverrides {
        profile: Some(Profile::Micronode),
        ..file_flag()
    };
    let c = load(&o, &[], "[session]\nmax_rps = 600\n").unwrap();
    let micro = profile(Profile::Micronode);
    assert_eq!(c.session.max_rps, 600);
    assert_eq!(c.session.burst, micro.session.burst);
    assert_eq!(c.session.chunk_bytes, micro.session.chunk_bytes);
    assert_eq!(c.store, micro.store);
    // A list is replaced whole.
    let file = format!("peers = [\"10.0.0.1:9500#{ID_A}\"]\n");
    let o = ConfigOverrides {
        peers: vec![format!("10.0.0.2:9500#{ID_B}")],
        ..file_flag()
    };
    let c = load(&o, &[], &file).unwrap();
    assert_eq!(c.peers.len(), 1);
    assert_eq!(c.peers[0].to_string(), format!("10.0.0.2:9500#{ID_B}"));
}

#[test]
fn selectors_from_flags_beat_the_environment() {
    let e = [
        ("RONODE_PROFILE", "micronode"),
        ("RONODE_CONFIG", "from-env.toml"),
    ];
    let read = |path: &Path| -> io::Result<String> {
        Ok(match path.to_str() {
            Some("from-env.toml") => "shards = 4".to_owned(),
            _ => "shards = 5".to_owned(),
        })
    };
    let c = NodeConfig::load_with(&ConfigOverrides::default(), &env(&e), read).unwrap();
    assert!(c.amnesia);
    assert_eq!(c.shards, 4);
    let o = ConfigOverrides {
        profile: Some(Profile::Macronode),
        config: Some("from-flag.toml".into()),
        ..ConfigOverrides::default()
    };
    let c = NodeConfig::load_with(&o, &env(&e), read).unwrap();
    assert!(!c.amnesia);
    assert_eq!(c.shards, 5);
}

#[test]
fn environment_values_nested_and_bad() {
    let e = [
        ("RONODE_SESSION__MAX_RPS", "100"),
        ("RONODE_STORE__KIND", "ram"),
        ("RONODE_PIN", "false"),
        ("RONODE_LISTEN", "0.0.0.0:7000"),
        (
            "RONODE_PEERS",
            &format!("10.0.0.1:9500#{ID_A}, 10.0.0.2:9500#{ID_B}"),
        ),
        ("HOME", "/root"),
    ];
    let c = load(&ConfigOverrides::default(), &e, "").unwrap();
    assert_eq!(c.session.max_rps, 100);
    assert_eq!(c.store.kind, StoreKind::Ram);
    assert_eq!(c.store.capacity_bytes, 256 * MIB, "RAM default capacity");
    assert!(!c.pin);
    assert_eq!(c.listen, "0.0.0.0:7000".parse().unwrap());
    assert_eq!(c.peers.len(), 2);

    let bad = |name: &str, value: &str| {
        err(load(&ConfigOverrides::default(), &[(name, value)], "")).to_string()
    };
    assert_eq!(
        bad("RONODE_SESSION__MAX_RPS", "fast"),
        "config: session.max_rps = \"fast\" (from environment RONODE_SESSION__MAX_RPS): must \
         be an integer, not a string"
    );
    assert_eq!(
        bad("RONODE_PIN", "yes"),
        "config: pin = \"yes\" (from environment RONODE_PIN): must be true or false, not a string"
    );
    assert_eq!(
        bad("RONODE_SESSION_MAX_RPS", "100"),
        "environment: unknown variable RONODE_SESSION_MAX_RPS; did you mean \
         RONODE_SESSION__MAX_RPS?"
    );
}

#[test]
fn every_error_names_its_key() {
    let flags = |f: fn(&mut ConfigOverrides)| {
        let mut o = ConfigOverrides::default();
        f(&mut o);
        o
    };
    let cases: Vec<(Result<NodeConfig, ConfigError>, &str, &str)> = vec![
        (
            with_file("[session]\nchunk_bytes = 100\n"),
            "session.chunk_bytes",
            "config: session.chunk_bytes = 100 (from config file ronode.toml): must be between \
             4096 and 1048538 (PROTOCOL.md 2.1: 4 KiB .. the largest payload a frame can carry)",
        ),
        (
            with_file("[session]\nmax_frame = 65536\n"),
            "session.chunk_bytes",
            "config: session.chunk_bytes = 65536 (from default) conflicts with session.max_frame \
             = 65536 (from config file ronode.toml): a chunk plus the 38-byte header must fit \
             in one frame; lower chunk_bytes to 65498 or raise max_frame",
        ),
        (
            with_file("[session]\ninflight_frames = 65\n"),
            "session.inflight_frames",
            "must be between 1 and 64 (the protocol's MAX_INFLIGHT is 64)",
        ),
        (
            with_file("[objects]\nmax_byte = 1\n"),
            "objects.max_byte",
            "config file ronode.toml: unknown key objects.max_byte; did you mean \
             objects.max_bytes?",
        ),
        (
            with_file("[objects]\nmax_bytes = \"1 GiB\"\n"),
            "objects.max_bytes",
            "must be an integer, not a string",
        ),
        (
            with_file("[objects]\nput_policy = \"anyone\"\n"),
            "objects.put_policy",
            "must be one of \"token\", \"open\"",
        ),
        (
            with_file("[store]\ncapacity_bytes = 16777216\n"),
            "objects.max_bytes",
            "config: objects.max_bytes = 268435456 (from default) conflicts with \
             store.capacity_bytes = 16777216 (from config file ronode.toml): the store could \
             never hold an object of the largest size allowed; raise store.capacity_bytes or lower \
             objects.max_bytes",
        ),
        (
            with_file("[store]\nkind = \"disk\"\n[queues]\nwork = 100\n"),
            "queues.work",
            "must be between 256 and 2048 (the svc-dht seed's queue_cap.work: 256 to 2048)",
        ),
        (
            load(
                &flags(|o| o.admin = Some("127.0.0.1:9500".parse().unwrap())),
                &[],
                "",
            ),
            "admin",
            "config: admin = \"127.0.0.1:9500\" (from flag --admin) conflicts with listen = \
             \"127.0.0.1:9500\" (from default): the admin plane needs its own port",
        ),
        (
            load(
                &flags(|o| o.amnesia = Some(true)),
                &[("RONODE_STORE__KIND", "disk")],
                "",
            ),
            "amnesia",
            "config: amnesia = true (from flag --amnesia) conflicts with store.kind = \"disk\" \
             (from environment RONODE_STORE__KIND): amnesia writes nothing to disk; drop one of \
             them (amnesia alone gives a RAM store)",
        ),
        (
            load(&flags(|o| o.shards = Some(5000)), &[], ""),
            "shards",
            "config: shards = 5000 (from flag --shards): must be between 0 and 1024",
        ),
        (
            load(&flags(|o| o.peers = vec!["10.0.0.1:9500".into()]), &[], ""),
            "peers[0]",
            "config: peers[0] = \"10.0.0.1:9500\" (from flag --peer): must be \"IP:port#NodeId\"",
        ),
        (
            with_file("data_dir = \"\"\n"),
            "data_dir",
            "config: data_dir = \"\" (from config file ronode.toml): must be a path, not empty",
        ),
        (
            with_file("listen = 9500\n"),
            "listen",
            "must be an address IP:port",
        ),
        (
            with_file("[session]\nmax_rps = 1\nmax_rps = 2\n"),
            "ronode.toml",
            "config file ronode.toml: line 3, column 1: ",
        ),
        (
            NodeConfig::load_with(&file_flag(), &[], |_| {
                Err(io::Error::new(io::ErrorKind::NotFound, "No such file"))
            }),
            "ronode.toml",
            "config file ronode.toml: No such file",
        ),
        (
            load(
                &ConfigOverrides::default(),
                &[("RONODE_ENGINE__RING_DEPTH", "32768")],
                "",
            ),
            "engine.ring_depth",
            "config: engine.ring_depth = 32768 (from environment RONODE_ENGINE__RING_DEPTH): \
             must be between 8 and 4096 (measured: 8 to 4096 work, 32768 fails)",
        ),
    ];
    for (result, key, text) in cases {
        let e = err(result);
        let shown = e.to_string();
        assert_eq!(e.subject(), key, "{shown}");
        assert!(shown.contains(key), "{shown}");
        assert!(shown.contains(text), "{shown}\n  wanted: {text}");
    }
}

#[test]
fn amnesia_turns_a_default_or_profile_disk_store_into_ram() {
    let o = ConfigOverrides {
        amnesia: Some(true),
        ..ConfigOverrides::default()
    };
    let c = load(&o, &[], "").unwrap();
    assert_eq!(c.store.kind, StoreKind::Ram);
    assert_eq!(c.store.capacity_bytes, 256 * MIB);
    let o = ConfigOverrides {
        profile: Some(Profile::Macronode),
        ..o
    };
    // Macronode's 64 GiB is a disk size: the RAM store gets 256 MiB, too small for
    // macronode's 1 GiB objects, and the node says so rather than guess.
    assert_eq!(
        err(load(&o, &[], "")).to_string(),
        "config: objects.max_bytes = 1073741824 (from profile macronode) conflicts with \
         store.capacity_bytes = 268435456 (from the RAM store's default): the store could never \
         hold an object of the largest size allowed; raise store.capacity_bytes or lower \
         objects.max_bytes"
    );
    // An explicit capacity is kept.
    let c = load(&o, &[("RONODE_STORE__CAPACITY_BYTES", "4294967296")], "").unwrap();
    assert_eq!(c.store.kind, StoreKind::Ram);
    assert_eq!(c.store.capacity_bytes, 4 * GIB);
    // An explicit disk store and amnesia cannot both be honoured.
    let o = ConfigOverrides {
        config: Some("ronode.toml".into()),
        ..o
    };
    let e = err(load(&o, &[], "[store]\nkind = \"disk\"\n"));
    assert!(
        e.to_string().contains("(from config file ronode.toml)"),
        "{e}"
    );
}

#[test]
fn validate_checks_a_config_built_in_code() {
    let mut c = NodeConfig::default();
    c.session.chunk_bytes = 100;
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "config: session.chunk_bytes = 100: must be between 4096 and 1048538 (PROTOCOL.md 2.1: 4 KiB \
         .. the largest payload a frame can carry)"
    );
    let c = NodeConfig {
        amnesia: true,
        ..NodeConfig::default()
    };
    assert_eq!(
        c.validate().unwrap_err().to_string(),
        "config: amnesia = true conflicts with store.kind = \"disk\": amnesia writes nothing to \
         disk"
    );
    let mut c = NodeConfig::default();
    c.store.capacity_bytes = u64::MAX;
    assert!(c.validate().is_err());
    assert!(c.to_toml_string().is_err());
}

#[test]
fn shown_config_loads_back_as_a_file() {
    let mut o = ConfigOverrides {
        peers: vec![format!("[::1]:9500#{ID_A}")],
        identity: Some("/etc/ronode/id.key".into()),
        ..ConfigOverrides::default()
    };
    for p in [None, Some(Profile::Micronode), Some(Profile::Macronode)] {
        o.profile = p;
        let c = load(&o, &[], "").unwrap();
        let text = c.to_toml_string().unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&text).unwrap(), c, "{text}");
        assert_eq!(with_file(&text).unwrap(), c, "{text}");
    }
    let text = NodeConfig::default().to_toml_string().unwrap();
    assert!(text.starts_with("listen = \"127.0.0.1:9500\"\n"), "{text}");
    assert!(text.contains("\n[session]\n"), "{text}");
    assert!(
        !text.contains("identity"),
        "unset keys are left out: {text}"
    );
}

#[test]
fn struct_fields_are_the_knob_table() {
    let c = NodeConfig {
        identity: Some("x".into()),
        cap_key: Some("y".into()),
        ..NodeConfig::default()
    };
    let table = toml::Table::try_from(&c).unwrap();
    let mut keys = Vec::new();
    for (k, v) in &table {
        match v {
            toml::Value::Table(inner) => keys.extend(inner.keys().map(|n| format!("{k}.{n}"))),
            _ => keys.push(k.clone()),
        }
    }
    keys.sort();
    let mut knobs: Vec<String> = knobs::KNOBS.iter().map(|k| k.key.to_owned()).collect();
    knobs.sort();
    assert_eq!(keys, knobs);
}
