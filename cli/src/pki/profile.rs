//! Certificate profiles: exactly the extensions AWS IoT and TLS peers expect
//! of a CA, a device and a proof-of-possession (verification) certificate.

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyUsagePurpose,
    SerialNumber,
};
use time::{Duration, OffsetDateTime};

use super::subject::{to_distinguished_name, Attribute};

/// Clock skew tolerated for freshly issued certificates.
const BACKDATE: Duration = Duration::minutes(5);

/// A random, positive, 16-byte serial number.
pub(crate) fn random_serial() -> SerialNumber {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random number generator");
    bytes[0] &= 0x7f; // positive
    bytes[0] |= 0x01; // no leading zero octet: always 16 bytes
    SerialNumber::from_slice(&bytes)
}

/// Validity starting now (minus skew) for `days`, never past `cap` (the
/// issuer's own not-after, so no certificate outlives its CA).
pub(crate) fn validity(days: u32, cap: Option<OffsetDateTime>) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .expect("zero is a valid nanosecond");
    let not_after = now + Duration::days(days.into());
    let not_after = cap.map_or(not_after, |cap| not_after.min(cap));
    (now - BACKDATE, not_after)
}

/// A CA: basicConstraints critical CA:TRUE (with pathlen when given),
/// keyUsage critical keyCertSign + cRLSign, SKI and AKI.
pub(crate) fn ca(
    subject: &[Attribute],
    days: u32,
    path_len: Option<u8>,
    cap: Option<OffsetDateTime>,
) -> CertificateParams {
    let mut p = base(subject, days, cap);
    p.is_ca = IsCa::Ca(match path_len {
        Some(n) => BasicConstraints::Constrained(n),
        None => BasicConstraints::Unconstrained,
    });
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

/// A device: CA:FALSE, digitalSignature (+ keyEncipherment for RSA),
/// extendedKeyUsage clientAuth, SKI and AKI.
pub(crate) fn device(
    subject: &[Attribute],
    days: u32,
    rsa: bool,
    cap: Option<OffsetDateTime>,
) -> CertificateParams {
    let mut p = base(subject, days, cap);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    if rsa {
        p.key_usages.push(KeyUsagePurpose::KeyEncipherment);
    }
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

/// AWS IoT's proof of possession: subject CN = the registration code.
pub(crate) fn verification(code: &str, cap: Option<OffsetDateTime>) -> CertificateParams {
    let cn = super::subject::validated("CN", code).expect("registration code validated by caller");
    let mut p = base(&[cn], 7, cap);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p
}

fn base(subject: &[Attribute], days: u32, cap: Option<OffsetDateTime>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = to_distinguished_name(subject);
    (p.not_before, p.not_after) = validity(days, cap);
    p.serial_number = Some(random_serial());
    p.use_authority_key_identifier_extension = true;
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_positive_sixteen_bytes_and_distinct() {
        let a = random_serial().to_bytes();
        let b = random_serial().to_bytes();
        assert_eq!(a.len(), 16);
        assert!(a[0] & 0x80 == 0 && a[0] != 0);
        assert_ne!(a, b);
    }

    #[test]
    fn validity_is_capped_by_the_issuer() {
        let cap = OffsetDateTime::now_utc() + Duration::days(10);
        let (nb, na) = validity(3650, Some(cap));
        assert_eq!(na, cap);
        assert!(nb < OffsetDateTime::now_utc());
        let (_, na) = validity(1, Some(cap));
        assert!(na < cap);
    }
}
