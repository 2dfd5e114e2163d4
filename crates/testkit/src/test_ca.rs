//! A certificate authority made for one test, for the HTTPS tests of the alert receiver: it signs
//! server certificates for 127.0.0.1, and makes HTTP clients that trust it and no other.

/// A CA with its key, in memory only.
pub struct TestCa(rcgen::CertifiedIssuer<'static, rcgen::KeyPair>);

impl TestCa {
    pub fn new(name: &str) -> Self {
        let mut params = rcgen::CertificateParams::default();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        let key = rcgen::KeyPair::generate().unwrap();
        Self(rcgen::CertifiedIssuer::self_signed(params, key).unwrap())
    }

    /// A server certificate for 127.0.0.1 and its private key, both PEM.
    pub fn server_pair(&self) -> (String, String) {
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        (params.signed_by(&key, &*self.0).unwrap().pem(), key.serialize_pem())
    }

    /// A client that trusts this CA and no other, and makes a new connection (so a new handshake)
    /// for each request.
    pub fn client(&self) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(self.0.pem().as_bytes()).unwrap();
        reqwest::Client::builder().tls_certs_only([ca]).pool_max_idle_per_host(0).build().unwrap()
    }
}
