//! The objects on the token: finding a CA key pair by label, generating one,
//! and reading its public half into X.509 form.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::error::{call, TokenError};
use crate::pki::keys::KeyAlg;
use crate::pki::store::der;

/// The private key labelled `label` (and `id` when given) and its public
/// half; several private or several public keys that fit are refused, as
/// adopting one of them would be a guess.
pub(super) fn find_pair(
    session: &Session,
    token: &str,
    label: &str,
    id: Option<&[u8]>,
) -> Result<Option<(ObjectHandle, Option<ObjectHandle>)>, TokenError> {
    let template = |class| {
        let mut t = vec![
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            t.push(Attribute::Id(id.to_vec()));
        }
        t
    };
    let one = |found: Vec<ObjectHandle>, kind| match found.len() {
        0 | 1 => Ok(found.first().copied()),
        count => Err(TokenError::Ambiguous {
            token: token.into(),
            label: label.into(),
            count,
            kind,
        }),
    };
    let private = session
        .find_objects(&template(ObjectClass::PRIVATE_KEY))
        .map_err(call(token, "finding the key"))?;
    let Some(private) = one(private, "private")? else {
        return Ok(None);
    };
    let public = session
        .find_objects(&template(ObjectClass::PUBLIC_KEY))
        .map_err(call(token, "finding the public key"))?;
    Ok(Some((private, one(public, "public")?)))
}

/// How many private keys on the token are labelled `label`.
pub(super) fn count_private(
    session: &Session,
    token: &str,
    label: &str,
) -> Result<usize, TokenError> {
    let template = [
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::Label(label.as_bytes().to_vec()),
    ];
    session
        .find_objects(&template)
        .map(|found| found.len())
        .map_err(call(token, "finding the key"))
}

pub(super) fn generate(
    session: &Session,
    token: &str,
    label: &str,
    id: &[u8],
    alg: KeyAlg,
) -> Result<(ObjectHandle, ObjectHandle), TokenError> {
    let common = |t: &mut Vec<Attribute>| {
        t.push(Attribute::Token(true));
        t.push(Attribute::Label(label.as_bytes().to_vec()));
        t.push(Attribute::Id(id.to_vec()));
    };
    let mut public = vec![Attribute::Verify(true)];
    common(&mut public);
    let mut private = vec![
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        // A CA key signs; tokens default some of these to true.
        Attribute::Decrypt(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ];
    common(&mut private);
    let mechanism = match alg.rsa_bits() {
        Some(bits) => {
            public.push(Attribute::ModulusBits((bits as u64).into()));
            public.push(Attribute::PublicExponent(vec![1, 0, 1]));
            Mechanism::RsaPkcsKeyPairGen
        }
        None => {
            public.push(Attribute::EcParams(der::curve_oid(alg).to_vec()));
            Mechanism::EccKeyPairGen
        }
    };
    session
        .generate_key_pair(&mechanism, &public, &private)
        .map_err(call(token, "generating the key pair"))
}

/// The key's kind and its public key as X.509 subjectPublicKey bits.
pub(super) fn read_public(
    session: &Session,
    token: &str,
    public: ObjectHandle,
) -> Result<(KeyAlg, Vec<u8>), TokenError> {
    let attrs = session
        .get_attributes(public, &[AttributeType::KeyType])
        .map_err(call(token, "reading the key type"))?;
    let key_type = attrs.iter().find_map(|a| match a {
        Attribute::KeyType(k) => Some(*k),
        _ => None,
    });
    let unsupported = |what: String| TokenError::Call {
        token: token.into(),
        action: "reading the public key",
        reason: what,
    };
    if key_type == Some(KeyType::EC) {
        let attrs = session
            .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
            .map_err(call(token, "reading the public key"))?;
        let (mut params, mut point) = (Vec::new(), Vec::new());
        for a in attrs {
            match a {
                Attribute::EcParams(p) => params = p,
                Attribute::EcPoint(p) => point = p,
                _ => {}
            }
        }
        let kind = [KeyAlg::EcP256, KeyAlg::EcP384]
            .into_iter()
            .find(|k| der::curve_oid(*k) == params.as_slice())
            .ok_or_else(|| {
                unsupported(format!(
                    "unsupported curve (EC params {})",
                    hex::encode(&params)
                ))
            })?;
        Ok((kind, der::unwrap_octet_string(&point)))
    } else if key_type == Some(KeyType::RSA) {
        let attrs = session
            .get_attributes(
                public,
                &[AttributeType::Modulus, AttributeType::PublicExponent],
            )
            .map_err(call(token, "reading the public key"))?;
        let (mut n, mut e) = (Vec::new(), Vec::new());
        for a in attrs {
            match a {
                Attribute::Modulus(m) => n = m,
                Attribute::PublicExponent(x) => e = x,
                _ => {}
            }
        }
        let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
        let kind = KeyAlg::from_rsa_bits(bits).ok_or_else(|| {
            unsupported(format!(
                "RSA key of {bits} bits (expected 2048, 3072 or 4096)"
            ))
        })?;
        Ok((kind, der::rsa_public_key(&n, &e)))
    } else {
        Err(unsupported(format!(
            "unsupported key type {key_type:?} (expected EC or RSA)"
        )))
    }
}
