//! The file names written for each device.

use crate::files::{PUBLIC, SECRET};

/// File names written per device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Layout {
    /// device.key, device.crt, device-and-ca.crt
    Default,
    /// private.pem.key, certificate.pem.crt (device + CA chain), aws-root-ca.pem (ESP-IDF examples)
    EspIdf,
}

/// The names of one device's files, relative to its directory.
pub(crate) struct Files {
    /// Private key (absent when signing a CSR).
    pub(crate) key: &'static str,
    /// The device certificate (first block of `bundle` when they are one file).
    pub(crate) cert: &'static str,
    /// Device certificate followed by the issuing chain: what a device
    /// presents on first connect.
    pub(crate) bundle: &'static str,
    /// Amazon's root CA for verifying the AWS IoT endpoint, when the layout wants it.
    pub(crate) server_root: Option<&'static str>,
}

impl Files {
    /// What one device's directory holds, each file with its mode: the key
    /// (when there is one), the certificate (when it is not the bundle), the
    /// bundle, and the server root (when the layout wants it).
    pub(crate) fn contents<'a>(
        &self,
        key_pem: Option<&'a str>,
        cert_pem: &'a str,
        bundle: &'a str,
        server_root: Option<&'a str>,
    ) -> Vec<(&'static str, &'a [u8], u32)> {
        let mut contents = Vec::with_capacity(4);
        if let Some(key_pem) = key_pem {
            contents.push((self.key, key_pem.as_bytes(), SECRET));
        }
        if self.cert != self.bundle {
            contents.push((self.cert, cert_pem.as_bytes(), PUBLIC));
        }
        contents.push((self.bundle, bundle.as_bytes(), PUBLIC));
        if let (Some(file), Some(pem)) = (self.server_root, server_root) {
            contents.push((file, pem.as_bytes(), PUBLIC));
        }
        contents
    }
}

impl Layout {
    /// The file names of this layout.
    pub(crate) fn files(self) -> Files {
        match self {
            Layout::Default => Files {
                key: "device.key",
                cert: "device.crt",
                bundle: "device-and-ca.crt",
                server_root: None,
            },
            // The ESP-IDF AWS IoT examples read these three names. The client
            // certificate file carries the chain too, so JITR works on first
            // connect; aws-root-ca.pem is Amazon's root that verifies the
            // broker (not our CA, as some guides have it).
            Layout::EspIdf => Files {
                key: "private.pem.key",
                cert: "certificate.pem.crt",
                bundle: "certificate.pem.crt",
                server_root: Some("aws-root-ca.pem"),
            },
        }
    }

    /// Every layout, to recognise device directories written by any of them.
    pub(crate) fn all() -> [Layout; 2] {
        [Layout::Default, Layout::EspIdf]
    }
}
