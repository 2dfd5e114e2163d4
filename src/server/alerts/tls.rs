//! HTTPS for the receiver, so that its credentials do not cross the network in clear: a
//! certificate chain and its private key, from PEM files that are read at start and again every few
//! seconds. A renewed certificate is served from the next connection on; a pair that cannot be used
//! (half-written, or a key that is not the certificate's) is logged and the last good pair is kept.
//!
//! The paths are opened anew at each read, so a Kubernetes Secret volume's symlink swap is
//! followed, and the contents are compared rather than modification times, which say nothing
//! reliable about a file moved or copied into place.

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::{self, PemObject};
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, InconsistentKeys, ServerConfig};

/// How often the controller reads the files again.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(5);

/// The largest file read: a Kubernetes Secret holds at most 1 MiB, and a certificate chain is a few
/// kilobytes. Bounds what a wrong path (a log file, a disk image) makes the controller read every
/// few seconds.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The PEM files the receiver's certificate chain (leaf first) and private key are read from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why a certificate and key cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is larger than {MAX_FILE_BYTES} bytes: not a certificate or key", path.display())]
    TooLarge { path: PathBuf },
    #[error("{} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} holds a malformed PEM certificate: {source}", path.display())]
    Certificate {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("{} holds no PEM private key", path.display())]
    NoKey { path: PathBuf },
    #[error("{} holds a malformed PEM private key: {source}", path.display())]
    Key {
        path: PathBuf,
        #[source]
        source: pem::Error,
    },
    #[error("the private key in {} is not the key of the certificate in {}", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("cannot serve the certificate in {} with the key in {}: {source}", cert.display(), key.display())]
    Unusable {
        cert: PathBuf,
        key: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// The TLS configuration the receiver accepts connections with: the last good certificate and
/// key, replaced when their files change.
#[derive(Clone)]
pub struct ServerTls(pub(super) watch::Receiver<Arc<ServerConfig>>);

/// The two files' contents, as last read.
type Contents = (Vec<u8>, Vec<u8>);

impl TlsFiles {
    /// Reads the files, or says why they cannot be served; and the task that reads them again every
    /// `every` and switches to a new pair once it is usable, for the caller to run.
    pub fn load(self, every: Duration) -> Result<(ServerTls, impl Future<Output = ()> + use<>), TlsError> {
        let contents = self.read()?;
        let config = self.config(&contents)?;
        let (current, tls) = watch::channel(Arc::new(config));
        Ok((ServerTls(tls), self.reload(contents, current, every)))
    }

    fn read(&self) -> Result<Contents, TlsError> {
        let read = |path: &Path| {
            let failed = |source| TlsError::Read { path: path.to_path_buf(), source };
            let mut contents = Vec::new();
            std::fs::File::open(path)
                .and_then(|file| file.take(MAX_FILE_BYTES + 1).read_to_end(&mut contents))
                .map_err(failed)?;
            if contents.len() as u64 > MAX_FILE_BYTES {
                return Err(TlsError::TooLarge { path: path.to_path_buf() });
            }
            Ok(contents)
        };
        Ok((read(&self.cert)?, read(&self.key)?))
    }

    /// The server configuration for these contents, with the aws-lc-rs provider chosen here rather
    /// than left to a process default, which is ambiguous when more than one provider is built.
    fn config(&self, (cert, key): &Contents) -> Result<ServerConfig, TlsError> {
        let chain = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| TlsError::Certificate { path: self.cert.clone(), source })?;
        if chain.is_empty() {
            return Err(TlsError::NoCertificate { path: self.cert.clone() });
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|source| match source {
            pem::Error::NoItemsFound => TlsError::NoKey { path: self.key.clone() },
            source => TlsError::Key { path: self.key.clone(), source },
        })?;
        let unusable = |source| TlsError::Unusable { cert: self.cert.clone(), key: self.key.clone(), source };
        let mut config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(unusable)?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|source| match source {
                rustls::Error::InconsistentKeys(InconsistentKeys::KeyMismatch) => {
                    TlsError::Mismatch { cert: self.cert.clone(), key: self.key.clone() }
                }
                source => unusable(source),
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Reads the files every `every`, and publishes a changed pair once it is usable. A failure is
    /// logged once, not at every read, until the files change again.
    async fn reload(self, mut served: Contents, current: watch::Sender<Arc<ServerConfig>>, every: Duration) {
        let mut failure: Option<String> = None;
        loop {
            tokio::time::sleep(every).await;
            let changed = self.read().and_then(|contents| {
                if contents == served {
                    return Ok(None);
                }
                self.config(&contents).map(|config| Some((contents, config)))
            });
            match changed {
                Ok(None) => failure = None,
                Ok(Some((contents, config))) => {
                    current.send_replace(Arc::new(config));
                    served = contents;
                    failure = None;
                    tracing::info!(cert = %self.cert.display(), "alert receiver: serving the new TLS certificate");
                }
                Err(error) => {
                    let text = error.to_string();
                    if failure.as_ref() != Some(&text) {
                        tracing::warn!(%error, "alert receiver: cannot use the TLS files; serving the last good certificate");
                        failure = Some(text);
                    }
                }
            }
        }
    }
}
