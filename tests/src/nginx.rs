//! nginx as a lab backend: one single-process nginx (`master_process off`,
//! so nothing outlives a kill) per backend namespace, with a `/health` page
//! whose status a test chooses, optionally TLS on 443.

use crate::lab::Lab;
use std::path::PathBuf;

/// A self-signed certificate and its key for `cn`, in the lab's
/// directory: (cert, key).
pub fn self_signed(lab: &Lab, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (
        lab.dir.join(format!("{cn}.pem")),
        lab.dir.join(format!("{cn}.key")),
    );
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args(["-subj", &format!("/CN={cn}")])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{out:?}");
    (cert, key)
}

/// An nginx in backend `i`'s namespace: `/health` answers `health`, every
/// other path "bN CLIENT"; with `tls`, port 443 serves the same over TLS.
pub struct Nginx {
    dir: PathBuf,
    ns: String,
    name: String,
}

impl Nginx {
    /// Backend `i`'s nginx (not configured or started yet).
    pub fn new(lab: &Lab, i: usize) -> Nginx {
        let dir = lab.dir.join(format!("nginx-b{}", i + 1));
        std::fs::create_dir_all(&dir).unwrap();
        Nginx {
            dir,
            ns: lab.backend(i),
            name: format!("b{}", i + 1),
        }
    }

    /// Writes the config: `/health` answers `health`; `tls`: 443 speaks TLS
    /// with `cert` (else plain HTTP, if `plain_443`).
    pub fn configure(&self, health: u16, tls: Option<&(PathBuf, PathBuf)>, plain_443: bool) {
        let d = self.dir.display();
        let listen_443 = match (tls, plain_443) {
            (Some((cert, key)), _) => format!(
                "listen 443 ssl; ssl_certificate {}; ssl_certificate_key {};",
                cert.display(),
                key.display()
            ),
            (None, true) => "listen 443;".into(),
            (None, false) => String::new(),
        };
        let conf = format!(
            "daemon off; master_process off; user root; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off; default_type text/plain;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 80 backlog=4096; {listen_443}
    location = /health {{ return {health} \"health\\n\"; }}
    location / {{ return 200 \"{} $remote_addr\\n\"; }}
  }}
}}
",
            self.name
        );
        std::fs::write(self.dir.join("nginx.conf"), conf).unwrap();
    }

    /// Writes a config with two sites: the default one (port 80's
    /// `/health` answers 404, port 443 refuses TLS handshakes without a
    /// known server name) and `site` (`/health` answers 302 on 80 and, with
    /// SNI `site`, on 443 with `cert`): a probe reaches the site only by
    /// its Host header and server name.
    pub fn configure_named(&self, site: &str, (cert, key): &(PathBuf, PathBuf)) {
        let d = self.dir.display();
        let (c, k) = (cert.display(), key.display());
        let conf = format!(
            "daemon off; master_process off; user root; pid {d}/nginx.pid; error_log {d}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off; default_type text/plain;
  client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  server {{
    listen 80 default_server; listen 443 ssl default_server; ssl_reject_handshake on;
    location = /health {{ return 404 \"no such site\\n\"; }}
    location / {{ return 200 \"{} $remote_addr\\n\"; }}
  }}
  server {{
    listen 80; listen 443 ssl; server_name {site};
    ssl_certificate {c}; ssl_certificate_key {k};
    location = /health {{ return 302 /up; }}
  }}
}}
",
            self.name
        );
        std::fs::write(self.dir.join("nginx.conf"), conf).unwrap();
    }

    /// Its config file.
    pub fn conf(&self) -> String {
        self.dir.join("nginx.conf").display().to_string()
    }

    /// Starts it (killed with the lab) and waits until port 80 listens.
    pub fn start(&self, lab: &Lab) {
        lab.spawn(
            &self.ns,
            &[
                "nginx",
                "-c",
                &self.conf(),
                "-p",
                &self.dir.display().to_string(),
            ],
        );
        assert!(
            lab.wait_until(&self.ns, "ss -ltn | grep -q ':80 '", 10),
            "nginx did not start in {}: {}",
            self.ns,
            std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
        );
    }

    /// Stops it and waits until port 80 is closed.
    pub fn stop(&self, lab: &Lab) {
        let out = lab.exec(&self.ns, &["nginx", "-c", &self.conf(), "-s", "stop"]);
        assert!(out.status.success(), "{out:?}");
        assert!(
            lab.wait_until(&self.ns, "! ss -ltn | grep -q ':80 '", 10),
            "nginx did not stop in {}",
            self.ns
        );
    }

    /// Rereads the config (a new one written with [`Nginx::configure`]).
    pub fn reload(&self, lab: &Lab) {
        let out = lab.exec(&self.ns, &["nginx", "-c", &self.conf(), "-s", "reload"]);
        assert!(out.status.success(), "{out:?}");
    }
}
