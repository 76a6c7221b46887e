//! Amazon's root CAs, which AWS IoT's ATS endpoints chain to, from the
//! Mozilla root store compiled in.

/// Amazon Root CA 1 to 4 (DER), in that order.
pub(crate) fn roots() -> Vec<Vec<u8>> {
    let mut roots: Vec<(String, Vec<u8>)> = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|der| {
            let facts = jitr_core::CertFacts::from_der(der).ok()?;
            let cn = facts.common_name()?.to_string();
            cn.starts_with("Amazon Root CA ")
                .then(|| (cn, der.as_ref().to_vec()))
        })
        .collect();
    roots.sort();
    roots.into_iter().map(|(_, der)| der).collect()
}

/// Amazon Root CA 1 (PEM), for devices that verify the endpoint from a file.
pub(crate) fn root_ca_1_pem() -> String {
    let first = roots()
        .into_iter()
        .next()
        .expect("Amazon Root CA 1 is in the Mozilla root store");
    jitr_core::pem::encode_certificate(&first)
}

#[cfg(test)]
mod tests {
    #[test]
    fn amazon_roots_are_found_in_order() {
        let roots = super::roots();
        assert_eq!(roots.len(), 4);
        let first = jitr_core::CertFacts::from_der(&roots[0]).unwrap();
        assert_eq!(first.common_name(), Some("Amazon Root CA 1"));
        assert!(first.is_ca());
        let pem = super::root_ca_1_pem();
        assert_eq!(
            jitr_core::pem::certificates(pem.as_bytes()).unwrap(),
            vec![roots[0].clone()]
        );
    }
}
