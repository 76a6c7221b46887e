//! A real mosquitto broker with client-certificate TLS on a free loopback port.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::{free_port, openssl, wait_for_port, Guard, Run};

/// A running broker; stopped on drop.
pub struct Broker {
    pub port: u16,
    /// The CA that signed the broker's own certificate (clients trust it).
    pub server_ca: String,
    _child: Guard,
}

impl Broker {
    /// Starts mosquitto requiring client certificates issued by `client_ca`
    /// (a PEM file); its server certificate comes from a throwaway openssl CA
    /// made in `dir`.
    pub fn start(dir: &Path, client_ca: &Path) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let d = dir.to_str().unwrap();
        self_signed(dir, "server-ca", "/CN=test broker CA", &[]);
        crate::ec_csr(dir, "server.key", "server.csr", "/CN=127.0.0.1");
        std::fs::write(
            dir.join("san.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "server-ca.crt",
                "-CAkey",
                "server-ca.key",
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-days",
                "2",
                "-extfile",
                "san.cnf",
            ],
        )
        .success();
        Broker::launch(dir, client_ca, format!("{d}/server-ca.crt"))
    }

    /// Like [`Broker::start`], but the broker's certificate is what the
    /// classic one-liner `openssl req -x509` makes: self-signed and, by
    /// OpenSSL's default extensions, basicConstraints CA:TRUE. `san` is its
    /// subjectAltName (None: the one-liner's CN only). Clients pin it.
    pub fn start_self_signed(dir: &Path, client_ca: &Path, san: Option<&str>) -> Broker {
        std::fs::create_dir_all(dir).unwrap();
        let ext = san.map(|s| format!("subjectAltName={s}"));
        let extra: Vec<&str> = match &ext {
            Some(ext) => vec!["-addext", ext.as_str()],
            None => vec![],
        };
        self_signed(dir, "server", "/CN=localhost", &extra);
        let d = dir.to_str().unwrap();
        Broker::launch(dir, client_ca, format!("{d}/server.crt"))
    }

    /// Runs mosquitto with `dir`'s server.crt and server.key.
    fn launch(dir: &Path, client_ca: &Path, server_ca: String) -> Broker {
        let d = dir.to_str().unwrap();
        let port = free_port();
        // `user root`: as root, mosquitto would otherwise drop to the
        // mosquitto user, who cannot read the private temp directory.
        let conf = format!(
            "listener {port} 127.0.0.1\nuser root\nallow_anonymous true\ncafile {ca}\ncertfile {d}/server.crt\nkeyfile {d}/server.key\n\
             require_certificate true\nuse_identity_as_username true\ntls_version tlsv1.2\nlog_dest stderr\n",
            ca = client_ca.display()
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        let mut child = Command::new("mosquitto")
            .args(["-c", &format!("{d}/mosquitto.conf")])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("mosquitto.log")).unwrap())
            .spawn()
            .expect("mosquitto is installed (make test installs it)");
        wait_for_port(port, &mut child, "mosquitto");
        Broker {
            port,
            server_ca,
            _child: Guard(child),
        }
    }

    /// host:port clients connect to.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Publishes one message as a device with `cert` (or bundle) and `key`.
    pub fn publish(&self, cert: &Path, key: &Path, client_id: &str) -> Run {
        crate::run(Command::new("mosquitto_pub").args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "--cafile",
            &self.server_ca,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
            "-i",
            client_id,
            "-t",
            &format!("devices/{client_id}/hello"),
            "-m",
            "hi",
            "-q",
            "1",
        ]))
    }
}

/// What the one-liner `openssl req -x509` makes in `dir`: a P-256 key
/// `NAME.key` and a self-signed certificate `NAME.crt` for `subject`, valid
/// 2 days, with the further arguments `extra`.
fn self_signed(dir: &Path, name: &str, subject: &str, extra: &[&str]) {
    let (key, cert) = (format!("{name}.key"), format!("{name}.crt"));
    let args = [
        &["req", "-x509"][..],
        &crate::NEW_P256_KEY,
        &[
            "-keyout", &key, "-out", &cert, "-subj", subject, "-days", "2",
        ],
        extra,
    ]
    .concat();
    openssl(dir, &args).success();
}
