//! The few DER shapes remote signers hand back in raw form: ECDSA signatures
//! (r || s), EC points wrapped in OCTET STRING, RSA moduli and exponents.

use crate::pki::keys::KeyAlg;

/// The DER-encoded named-curve OID of an EC key kind (empty for RSA).
pub(crate) fn curve_oid(alg: KeyAlg) -> &'static [u8] {
    match alg {
        // 1.2.840.10045.3.1.7 (prime256v1)
        KeyAlg::EcP256 => &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07],
        // 1.3.132.0.34 (secp384r1)
        KeyAlg::EcP384 => &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22],
        _ => &[],
    }
}

fn length(len: usize, out: &mut Vec<u8>) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    length(content.len(), &mut out);
    out.extend_from_slice(content);
    out
}

/// A non-negative INTEGER from big-endian magnitude bytes.
fn integer(magnitude: &[u8]) -> Vec<u8> {
    let trimmed: Vec<u8> = magnitude.iter().copied().skip_while(|b| *b == 0).collect();
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend(trimmed);
    tlv(0x02, &content)
}

/// Converts a raw `r || s` ECDSA signature (PKCS#11, P1363) to the DER
/// `Ecdsa-Sig-Value` X.509 certificates carry.
pub(crate) fn ecdsa_signature(raw: &[u8]) -> Vec<u8> {
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut content = integer(r);
    content.extend(integer(s));
    tlv(0x30, &content)
}

/// `RSAPublicKey ::= SEQUENCE { modulus, publicExponent }`.
pub(crate) fn rsa_public_key(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut content = integer(n);
    content.extend(integer(e));
    tlv(0x30, &content)
}

/// The contents of a DER OCTET STRING, or the input when it is not one
/// (tokens differ in whether CKA_EC_POINT is wrapped).
pub(crate) fn unwrap_octet_string(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() > 2 && bytes[0] == 0x04 {
        let (len, start) = match bytes[1] {
            l if l < 0x80 => (l as usize, 2),
            0x81 if bytes.len() > 3 => (bytes[2] as usize, 3),
            _ => return bytes.to_vec(),
        };
        if start + len == bytes.len() {
            return bytes[start..].to_vec();
        }
    }
    bytes.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_raw_signatures_become_der() {
        // (raw r||s, expected DER)
        let cases: [(Vec<u8>, Vec<u8>); 3] = [
            (
                vec![0x01, 0x02],
                vec![0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02],
            ),
            // High bit set: a leading zero keeps the INTEGER positive.
            (
                vec![0x80, 0x7f],
                vec![0x30, 0x07, 0x02, 0x02, 0x00, 0x80, 0x02, 0x01, 0x7f],
            ),
            // Leading zeros are dropped; zero stays one byte.
            (
                vec![0x00, 0x05, 0x00, 0x00],
                vec![0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x00],
            ),
        ];
        for (raw, der) in cases {
            assert_eq!(ecdsa_signature(&raw), der, "{raw:02x?}");
        }
    }

    #[test]
    fn long_lengths_and_octet_strings() {
        let n = vec![0xc0; 256];
        let der = rsa_public_key(&n, &[1, 0, 1]);
        // SEQUENCE, 2-byte length; INTEGER of 257 bytes (leading zero).
        assert_eq!(&der[..4], &[0x30, 0x82, 0x01, 0x0a]);
        assert_eq!(&der[4..8], &[0x02, 0x82, 0x01, 0x01]);
        assert_eq!(&der[der.len() - 5..], &[0x02, 0x03, 1, 0, 1]);
        let point = [0x04u8; 65];
        let mut wrapped = vec![0x04, 65];
        wrapped.extend(point);
        assert_eq!(unwrap_octet_string(&wrapped), point.to_vec());
        assert_eq!(unwrap_octet_string(&point), point.to_vec());
    }
}
