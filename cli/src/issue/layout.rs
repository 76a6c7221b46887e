//! The file names written for each device.

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
