"""moto server as the local AWS IoT stand-in, with the gaps that matter to
JITR filled the way AWS IoT behaves (documented in the IoT API reference):

- certificate ids are the SHA-256 of the DER (moto's `iot.use_valid_cert`);
- RegisterCACertificate checks what AWS IoT checks (basicConstraints
  CA:TRUE; in DEFAULT mode a verification certificate whose CN is a
  registration code this server issued and that the CA signed), records
  `allowAutoRegistration` and `certificateMode`, and refuses a CA that is
  already registered (ResourceAlreadyExistsException);
- UpdateCACertificate honours `newAutoRegistrationStatus`;
- DescribeCACertificate reports `autoRegistrationStatus`;
- ListCACertificates exists;
- RegisterCertificate finds the CA by certificate, not by PEM text, and
  DescribeCertificate reports the `caCertificateId`.

Usage: python3 jitr_moto.py -p PORT   (binds 127.0.0.1)
"""
import sys

from moto.core.config import default_user_config

default_user_config["iot"] = {"use_valid_cert": True}

from moto.iot import models, responses  # noqa: E402
from moto.iot.exceptions import InvalidRequestException, ResourceAlreadyExistsException  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

ISSUED_CODES = set()
_get_code = models.IoTBackend.get_registration_code


def get_registration_code(self):
    code = _get_code(self)
    ISSUED_CODES.add(code)
    return code


def check_ca(ca_pem, verification_pem, mode):
    ca = x509.load_pem_x509_certificate(ca_pem.encode())
    try:
        is_ca = ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        is_ca = False
    if not is_ca:
        raise InvalidRequestException("The CA certificate does not have the basicConstraints extension as true")
    if mode == "SNI_ONLY":
        return
    if not verification_pem:
        raise InvalidRequestException("verificationCertificate is required in DEFAULT mode")
    v = x509.load_pem_x509_certificate(verification_pem.encode())
    cns = v.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not cns or cns[0].value not in ISSUED_CODES:
        raise InvalidRequestException("The verification certificate's CN is not a registration code of this account")
    try:
        v.verify_directly_issued_by(ca)
    except Exception as e:  # signature or issuer mismatch
        raise InvalidRequestException(f"The verification certificate is not signed by the CA: {e}")

_register = models.IoTBackend.register_ca_certificate
_update = models.IoTBackend.update_ca_certificate
_describe_dict = models.FakeCaCertificate.to_description_dict


def register_ca_certificate(self, ca_certificate, set_as_active, registration_config, auto=None):
    probe = models.FakeCaCertificate(ca_certificate, "INACTIVE", self.account_id, self.region_name, {})
    if probe.certificate_id in self.ca_certificates:
        existing = self.ca_certificates[probe.certificate_id]
        raise ResourceAlreadyExistsException(
            "The certificate is already registered", existing.certificate_id, existing.arn
        )
    cert = _register(self, ca_certificate, set_as_active, registration_config)
    cert.auto_registration_status = auto or "DISABLE"
    return cert


def update_ca_certificate(self, certificate_id, new_status, config, auto=None):
    _update(self, certificate_id, new_status, config)
    if auto:
        self.ca_certificates[certificate_id].auto_registration_status = auto


def to_description_dict(self):
    d = _describe_dict(self)
    d["autoRegistrationStatus"] = getattr(self, "auto_registration_status", "DISABLE")
    d["certificateMode"] = getattr(self, "certificate_mode", "DEFAULT")
    return d


def responses_register_ca_certificate(self):
    allow = self._get_bool_param("allowAutoRegistration")
    mode = self._get_param("certificateMode") or "DEFAULT"
    check_ca(self._get_param("caCertificate"), self._get_param("verificationCertificate"), mode)
    cert = self.iot_backend.register_ca_certificate(
        ca_certificate=self._get_param("caCertificate"),
        set_as_active=self._get_bool_param("setAsActive"),
        registration_config=self._get_param("registrationConfig"),
        auto="ENABLE" if allow else "DISABLE",
    )
    cert.certificate_mode = mode
    return responses.ActionResult({"certificateId": cert.certificate_id, "certificateArn": cert.arn})


def responses_update_ca_certificate(self):
    self.iot_backend.update_ca_certificate(
        certificate_id=self.path.split("/")[-1],
        new_status=self._get_param("newStatus"),
        config=self._get_param("registrationConfig"),
        auto=self._get_param("newAutoRegistrationStatus"),
    )
    return responses.EmptyResult()


def responses_list_ca_certificates(self):
    certs = [
        {k: c.to_dict()[k] for k in ("certificateArn", "certificateId", "status", "creationDate")}
        for c in self.iot_backend.ca_certificates.values()
    ]
    return responses.ActionResult({"certificates": certs})


def _find_ca_certificate(self, ca_certificate_pem):
    if not ca_certificate_pem:
        return None
    wanted = models.FakeCaCertificate(ca_certificate_pem, "INACTIVE", self.account_id, self.region_name, {}).certificate_id
    return wanted if wanted in self.ca_certificates else None


_certificate_dict = models.FakeCertificate.to_description_dict


def certificate_description(self):
    d = _certificate_dict(self)
    if self.ca_certificate_id:
        d["caCertificateId"] = self.ca_certificate_id
    return d


models.FakeCertificate.to_description_dict = certificate_description
models.IoTBackend._find_ca_certificate = _find_ca_certificate
models.IoTBackend.get_registration_code = get_registration_code
models.IoTBackend.register_ca_certificate = register_ca_certificate
models.IoTBackend.update_ca_certificate = update_ca_certificate
models.FakeCaCertificate.to_description_dict = to_description_dict
responses.IoTResponse.register_ca_certificate = responses_register_ca_certificate
responses.IoTResponse.update_ca_certificate = responses_update_ca_certificate
responses.IoTResponse.list_ca_certificates = responses_list_ca_certificates

if __name__ == "__main__":
    import os

    import moto.server

    # Every request checked against AWS's API models first (scripts/model_check_server.py).
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
    import model_check_server

    _run_simple = moto.server.run_simple
    moto.server.run_simple = lambda host, port, app, **kw: _run_simple(host, port, model_check_server.wsgi(app), **kw)
    moto.server.main(["-H", "127.0.0.1"] + sys.argv[1:])
