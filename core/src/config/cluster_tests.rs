//! `[cluster]`: a valid section, and each mistake with its field.

use super::*;

use super::tests::MINIMAL as BASE;

/// A key file holding `text`, named by its contents: runs reuse the same
/// files instead of leaving one more per run.
fn secret(text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!(
        "sluice-test-key-{}",
        &blake3::hash(text.as_bytes()).to_hex()[..16]
    ));
    std::fs::write(&p, text).unwrap();
    p
}

fn load(cluster: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(&format!("{BASE}\n[cluster]\n{cluster}"))
}

fn fields(cluster: &str) -> Vec<String> {
    load(cluster)
        .expect_err("should be refused")
        .0
        .into_iter()
        .inspect(|e| assert_eq!(e.object, "[cluster]"))
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_cluster_section_loads_and_derives_its_key() {
    let key = secret("a shared secret of some length\n");
    let c = load(&format!(
        "instance = 1\ninstances = 2\npeers = [\"10.0.0.2\"]\nsecret_file = \"{}\"",
        key.display()
    ))
    .unwrap();
    let cl = c.cluster.unwrap();
    assert_eq!((cl.instance, cl.instances, cl.sync_port), (1, 2, 7400));
    assert_eq!(
        cl.peers,
        vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    assert_eq!(cl.key, SyncKey::derive(b"a shared secret of some length"));
    assert_eq!(format!("{:?}", cl.key), "SyncKey(..)");
    assert!(Config::from_toml_str(BASE).unwrap().cluster.is_none());
}

#[test]
fn each_mistake_names_its_field() {
    let key = secret("a shared secret of some length");
    let k = key.display();
    assert_eq!(
        fields(&format!(
            "instances = 2\npeers = [\"10.0.0.2\"]\nsecret_file = \"{k}\""
        )),
        ["instance"]
    );
    assert_eq!(
        fields(&format!(
            "instance = 2\ninstances = 2\npeers = [\"10.0.0.2\"]\nsecret_file = \"{k}\""
        )),
        ["instance"]
    );
    assert_eq!(
        fields(&format!(
            "instance = 0\ninstances = 17\nsecret_file = \"{k}\""
        )),
        ["instances"]
    );
    assert_eq!(
        fields(&format!(
            "instance = 0\ninstances = 3\npeers = [\"10.0.0.2\"]\nsecret_file = \"{k}\""
        )),
        ["peers"]
    );
    assert_eq!(
        fields(&format!(
            "instance = 0\ninstances = 2\npeers = [\"203.0.113.2\"]\nsecret_file = \"{k}\""
        )),
        ["peers[0]", "peers"],
        "a peer off the internal subnets"
    );
    assert_eq!(
        fields(&format!(
            "instance = 0\ninstances = 2\npeers = [\"10.0.0.1\"]\nsecret_file = \"{k}\""
        )),
        ["peers[0]", "peers"],
        "its own address"
    );
    assert_eq!(
        fields(&format!("instance = 0\ninstances = 2\npeers = [\"10.0.0.2\"]\nsync_port = 61500\nsecret_file = \"{k}\"")),
        ["sync_port"]
    );
    assert_eq!(
        fields("instance = 0\ninstances = 2\npeers = [\"10.0.0.2\"]"),
        ["secret_file"]
    );
    assert_eq!(
        fields("instance = 0\ninstances = 2\npeers = [\"10.0.0.2\"]\nsecret_file = \"/nonexistent/key\""),
        ["secret_file"]
    );
    let short = secret("short");
    let e = load(&format!(
        "instance = 0\ninstances = 2\npeers = [\"10.0.0.2\"]\nsecret_file = \"{}\"",
        short.display()
    ))
    .unwrap_err();
    assert!(e.0[0].reason.contains("at least 16"), "{e}");
    assert_eq!(
        fields(&format!(
            "instance = 0\ninstances = 2\nsecrets = 1\nsecret_file = \"{k}\""
        )),
        ["secrets"]
    );
}
