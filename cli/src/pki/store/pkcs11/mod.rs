//! CA keys on a PKCS#11 token (SoftHSM2, YubiHSM, CloudHSM, ...) through
//! `cryptoki`. The private key is generated on the token as sensitive and
//! non-extractable; jitr only ever holds its handle.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use rcgen::SignatureAlgorithm;

mod error;
mod lock;
mod objects;

use self::error::call;
pub(crate) use self::error::TokenError;
use self::objects::{count_private, find_pair, generate, read_public};
use super::der;
use crate::pki::keys::KeyAlg;
use crate::pki::secret::Secret;

/// Where a CA key lives on a token: what `key.json` records (no secret).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct TokenKeyRef {
    pub(crate) module: PathBuf,
    pub(crate) token: String,
    pub(crate) key_label: String,
    /// CKA_ID, hex.
    pub(crate) key_id: String,
}

impl TokenKeyRef {
    /// The CKA_ID `key_id` names (empty: the label alone finds the key).
    pub(crate) fn id(&self) -> Result<Vec<u8>, hex::FromHexError> {
        hex::decode(&self.key_id)
    }
}

/// An open, logged-in token with the CA's key pair: signs through sessions
/// taken from a pool, so worker threads sign in parallel.
pub(crate) struct TokenSigner {
    ctx: Pkcs11,
    slot: Slot,
    token: String,
    private: ObjectHandle,
    public: Option<ObjectHandle>,
    public_der: Vec<u8>,
    alg: &'static SignatureAlgorithm,
    kind: KeyAlg,
    sessions: Mutex<Vec<Session>>,
    pub(crate) reference: TokenKeyRef,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("key", &self.reference)
            .finish()
    }
}

/// Loads the module, finds the token by label and logs in with `pin`.
fn open_token(
    module: &Path,
    token: &str,
    pin: &Secret,
) -> Result<(Pkcs11, Slot, Session), TokenError> {
    let module_text = module.display().to_string();
    let ctx = Pkcs11::new(module).map_err(|e| TokenError::Module {
        path: module_text.clone(),
        reason: e.to_string(),
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(TokenError::Module {
                path: module_text,
                reason: e.to_string(),
            })
        }
    }
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(call(token, "listing slots"))?;
    let mut present = Vec::new();
    let mut found = None;
    for slot in slots {
        if let Ok(info) = ctx.get_token_info(slot) {
            let label = info.label().trim_end().to_string();
            if label == token {
                found = Some(slot);
                break;
            }
            present.push(format!("\"{label}\""));
        }
    }
    let slot = found.ok_or_else(|| TokenError::NoToken {
        token: token.to_string(),
        module: module_text,
        present: if present.is_empty() {
            "none".into()
        } else {
            present.join(", ")
        },
    })?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(call(token, "opening a session"))?;
    let auth = AuthPin::from(pin.as_str().to_string());
    match session.login(UserType::User, Some(&auth)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(P11Error::Pkcs11(
            RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
            _,
        )) => return Err(TokenError::WrongPin(token.to_string())),
        Err(e) => return Err(call(token, "logging in")(e)),
    }
    Ok((ctx, slot, session))
}

impl TokenSigner {
    /// Opens the key a `key.json` refers to.
    /// `id` is its CKA_ID, decoded from `reference`.
    pub(crate) fn open(
        reference: &TokenKeyRef,
        id: &[u8],
        pin: &Secret,
    ) -> Result<Self, TokenError> {
        let (ctx, slot, session) = open_token(&reference.module, &reference.token, pin)?;
        let (private, public) =
            find_pair(&session, &reference.token, &reference.key_label, Some(id))?.ok_or_else(
                || TokenError::NoKey {
                    token: reference.token.clone(),
                    label: reference.key_label.clone(),
                },
            )?;
        Self::ready(ctx, slot, session, reference.clone(), private, public, None)
    }

    /// Adopts the key labelled `label` when the token has one and `adopt`
    /// (it must be of kind `alg`, and the only key pair of that label), else
    /// generates a new key pair there. Generation is exclusive: under a lock
    /// per module and token, and checked again afterwards (a run on another
    /// host), so two runs never both take one label.
    pub(crate) fn create(
        module: &Path,
        token: &str,
        label: &str,
        adopt: bool,
        alg: KeyAlg,
        pin: &Secret,
    ) -> Result<(Self, bool), TokenError> {
        // Held from before the token is opened: SoftHSM2, for one, can
        // miss its token while another process writes it.
        let _exclusive = lock::Creation::within(module, token, lock::WAIT)?;
        let (ctx, slot, session) = open_token(module, token, pin)?;
        let mut reference = TokenKeyRef {
            module: module.to_path_buf(),
            token: token.to_string(),
            key_label: label.to_string(),
            key_id: String::new(),
        };
        let taken = || TokenError::Taken {
            token: token.into(),
            label: label.into(),
        };
        if count_private(&session, token, label)? > 0 {
            if !adopt {
                return Err(taken());
            }
            let (private, public) = find_pair(&session, token, label, None)?.ok_or_else(taken)?;
            let signer = Self::ready(ctx, slot, session, reference, private, public, Some(alg))?;
            return Ok((signer, false));
        }
        let mut id = [0u8; 16];
        aws_lc_rs::rand::fill(&mut id).map_err(|_| TokenError::Call {
            token: token.into(),
            action: "making a key id",
            reason: "no randomness".into(),
        })?;
        reference.key_id = hex::encode(id);
        let (public, private) = generate(&session, token, label, &id, alg)?;
        // Another host may have generated under this label meanwhile: of
        // two such runs at most one sees its key alone.
        if count_private(&session, token, label)? > 1 {
            let _ = session.destroy_object(private);
            let _ = session.destroy_object(public);
            return Err(taken());
        }
        let signer = Self::ready(
            ctx,
            slot,
            session,
            reference,
            private,
            Some(public),
            Some(alg),
        )?;
        Ok((signer, true))
    }

    fn ready(
        ctx: Pkcs11,
        slot: Slot,
        session: Session,
        mut reference: TokenKeyRef,
        private: ObjectHandle,
        public: Option<ObjectHandle>,
        expect: Option<KeyAlg>,
    ) -> Result<Self, TokenError> {
        let token = reference.token.clone();
        let public_obj = public.ok_or_else(|| TokenError::Call {
            token: token.clone(),
            action: "reading the public key",
            reason: format!(
                "no public key object labelled \"{}\" beside the private key",
                reference.key_label
            ),
        })?;
        let (kind, public_der) = read_public(&session, &token, public_obj)?;
        if let Some(expected) = expect {
            if expected != kind {
                return Err(TokenError::WrongKind {
                    token,
                    label: reference.key_label.clone(),
                    found: kind.name().into(),
                    expected: expected.name().into(),
                });
            }
        }
        if reference.key_id.is_empty() {
            let attrs = session
                .get_attributes(private, &[AttributeType::Id])
                .map_err(call(&token, "reading the key id"))?;
            if let Some(Attribute::Id(id)) = attrs.first() {
                reference.key_id = hex::encode(id);
            }
        }
        Ok(TokenSigner {
            ctx,
            slot,
            token,
            private,
            public,
            public_der,
            alg: kind.signature_algorithm(),
            kind,
            sessions: Mutex::new(vec![session]),
            reference,
        })
    }

    pub(crate) fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    pub(crate) fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }

    /// Removes a key pair this run generated (a later step failed).
    pub(crate) fn destroy(&self) {
        if let Ok(session) = self.session() {
            let _ = session.destroy_object(self.private);
            if let Some(public) = self.public {
                let _ = session.destroy_object(public);
            }
            self.put_back(session);
        }
    }

    fn session(&self) -> Result<Session, TokenError> {
        if let Some(s) = self.sessions.lock().expect("session pool").pop() {
            return Ok(s);
        }
        // Login state is per application: new sessions are logged in already.
        self.ctx
            .open_ro_session(self.slot)
            .map_err(call(&self.token, "opening a session"))
    }

    fn put_back(&self, session: Session) {
        self.sessions.lock().expect("session pool").push(session);
    }

    /// Signs `msg` with the CA's algorithm; the signature in X.509 form.
    pub(crate) fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, TokenError> {
        let session = self.session()?;
        let result = if self.kind.is_rsa() {
            session.sign(&Mechanism::Sha256RsaPkcs, self.private, msg)
        } else {
            let digest_alg = if self.kind == KeyAlg::EcP384 {
                &aws_lc_rs::digest::SHA384
            } else {
                &aws_lc_rs::digest::SHA256
            };
            let digest = aws_lc_rs::digest::digest(digest_alg, msg);
            session
                .sign(&Mechanism::Ecdsa, self.private, digest.as_ref())
                .map(|raw| der::ecdsa_signature(&raw))
        };
        self.put_back(session);
        result.map_err(call(&self.token, "signing"))
    }
}
