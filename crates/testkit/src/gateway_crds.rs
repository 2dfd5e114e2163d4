//! Validators for the official Gateway API CRDs kept in `testdata/` (unmodified copies, see the
//! README beside them), built once per test binary.

use bellwether_openapi::SchemaValidator;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use std::path::Path;
use std::sync::OnceLock;

const GATEWAY_API_CRDS: &str = "testdata/gateway-api-v1.5.1";

fn validator(file: &str) -> SchemaValidator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(GATEWAY_API_CRDS).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    SchemaValidator::for_crd(&crd).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn http_routes() -> &'static SchemaValidator {
    static VALIDATOR: OnceLock<SchemaValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| validator("httproutes.yaml"))
}

pub fn grpc_routes() -> &'static SchemaValidator {
    static VALIDATOR: OnceLock<SchemaValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| validator("grpcroutes.yaml"))
}
