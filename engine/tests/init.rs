//! `ronode init`, run as a process: keys created 0600, loaded again, a readable key refused.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ronode-init-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn init(dir: &PathBuf) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ronode"))
        .args(["init", "--data-dir"])
        .arg(dir)
        .output()
        .expect("ronode runs")
}

fn node_id(out: &Output) -> String {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    let line = stdout.lines().last().expect("a last line");
    let id = line
        .strip_prefix("node_id ")
        .expect("last line names the NodeId");
    assert_eq!(id.len(), 64);
    id.to_owned()
}

fn mode(path: PathBuf) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn creates_keys_private_and_loads_them_again() {
    let dir = fresh_dir("create");
    let first = init(&dir);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(mode(dir.join("identity.key")), 0o600);
    assert_eq!(mode(dir.join("cap_root.key")), 0o600);
    assert_eq!(mode(dir.clone()), 0o700);
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("created") && stderr.contains("identity.key"),
        "{stderr}"
    );

    let second = init(&dir);
    assert!(second.status.success());
    assert_eq!(
        node_id(&first),
        node_id(&second),
        "the identity is loaded, not remade"
    );
    assert!(second.stderr.is_empty(), "nothing created the second time");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn refuses_a_key_file_others_can_read_naming_it() {
    let dir = fresh_dir("refuse");
    assert!(init(&dir).status.success());
    let key = dir.join("identity.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = init(&dir);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&key.display().to_string()) && stderr.contains("0644"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The root key of `cap_root.key` (format: `ron-cap-root-v1`, `kid=<hex>`, `key=<hex>`).
fn root_key(dir: &std::path::Path) -> ([u8; 8], [u8; 32]) {
    let text = std::fs::read_to_string(dir.join("cap_root.key")).unwrap();
    let field = |name: &str| {
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .expect("field present");
        hex::decode(line).unwrap()
    };
    (
        field("kid=").try_into().unwrap(),
        field("key=").try_into().unwrap(),
    )
}

#[test]
fn cap_mint_prints_a_token_the_root_key_verifies() {
    use ronode_proto::cap::{CapRequest, Capability, Op};
    let dir = fresh_dir("mint");
    assert!(init(&dir).status.success());
    let out = Command::new(env!("CARGO_BIN_EXE_ronode"))
        .args([
            "cap",
            "mint",
            "--scope",
            "put",
            "--ttl",
            "1h",
            "--max-bytes",
            "1000",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = hex::decode(stdout.lines().last().unwrap()).expect("hex token");
    let cap = Capability::decode(&token).unwrap();
    let (kid, key) = root_key(&dir);
    let keys = |k: &[u8; 8]| (*k == kid).then_some(key);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let put = |bytes, at| CapRequest {
        op: Op::Put,
        now: at,
        tenant: 0,
        bytes: Some(bytes),
    };
    cap.verify(keys, &put(1000, now))
        .expect("a put within the caveats");
    assert!(
        cap.verify(keys, &put(1001, now)).is_err(),
        "max_bytes holds"
    );
    assert!(
        cap.verify(keys, &put(10, now + 3601)).is_err(),
        "expires after the ttl"
    );
    let get = CapRequest {
        op: Op::Get,
        now,
        tenant: 0,
        bytes: None,
    };
    assert!(cap.verify(keys, &get).is_err(), "scope holds");

    let bad = Command::new(env!("CARGO_BIN_EXE_ronode"))
        .args(["cap", "mint", "--scope", "admin", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    std::fs::remove_dir_all(&dir).unwrap();
}
