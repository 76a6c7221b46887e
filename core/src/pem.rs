//! Reading certificates out of PEM (or DER) text.

/// Why certificate text could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PemError {
    #[error("no PEM \"CERTIFICATE\" block found")]
    NoCertificate,
    #[error("malformed PEM: {0}")]
    Malformed(String),
}

/// Returns the DER of every `CERTIFICATE` block in `input`, in order.
///
/// Input that does not look like PEM is taken as a single DER certificate,
/// so both encodings are accepted wherever a certificate file is read.
pub fn certificates(input: &[u8]) -> Result<Vec<Vec<u8>>, PemError> {
    if !looks_like_pem(input) {
        return if input.first() == Some(&0x30) {
            Ok(vec![input.to_vec()])
        } else {
            Err(PemError::NoCertificate)
        };
    }
    let blocks = ::pem::parse_many(input).map_err(|e| PemError::Malformed(e.to_string()))?;
    let certs: Vec<Vec<u8>> = blocks
        .into_iter()
        .filter(|p| p.tag() == "CERTIFICATE")
        .map(|p| p.into_contents())
        .collect();
    if certs.is_empty() {
        Err(PemError::NoCertificate)
    } else {
        Ok(certs)
    }
}

/// Encodes DER as one PEM `CERTIFICATE` block (64-column lines, `\n` endings).
pub fn encode_certificate(der: &[u8]) -> String {
    encode("CERTIFICATE", der)
}

/// Encodes DER as one PEM block labelled `label` (64-column lines, `\n`
/// endings, as openssl writes them).
pub fn encode(label: &str, der: &[u8]) -> String {
    ::pem::encode_config(
        &::pem::Pem::new(label, der.to_vec()),
        ::pem::EncodeConfig::new().set_line_ending(::pem::LineEnding::LF),
    )
}

/// Whether `input` holds a PEM block (anything else is taken as DER).
pub fn looks_like_pem(input: &[u8]) -> bool {
    input.windows(11).any(|w| w == b"-----BEGIN ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_text_without_certificate() {
        assert_eq!(certificates(b"hello"), Err(PemError::NoCertificate));
        let key_only = b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert_eq!(certificates(key_only), Err(PemError::NoCertificate));
    }

    #[test]
    fn reads_every_block_in_order_and_round_trips() {
        let a = encode_certificate(&[0x30, 1, 2]);
        let b = encode_certificate(&[0x30, 3, 4]);
        let bundle = format!("{a}{b}");
        assert_eq!(
            certificates(bundle.as_bytes()).unwrap(),
            vec![vec![0x30, 1, 2], vec![0x30, 3, 4]]
        );
    }

    #[test]
    fn der_input_is_one_certificate() {
        assert_eq!(
            certificates(&[0x30, 0x03, 1, 2, 3]).unwrap(),
            vec![vec![0x30, 0x03, 1, 2, 3]]
        );
    }
}
