//! Discovery documents: OpenID Connect v2 and v1, JWKS, instance discovery and user realm.
//! Every endpoint URL the sandbox serves points at the sandbox itself (https, same port, same
//! cloud prefix). `userinfo_endpoint` is the exception: the real documents name services the
//! sandbox doesn't emulate (Microsoft Graph for v2, the authority's `/openid/userinfo` for v1),
//! and the sandbox keeps those real values rather than advertise a URL of its own that would
//! answer 404.

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::cloud::Cloud;
use crate::directory::{CONSUMERS_TENANT_ID, TenantSegment};
use crate::identity::Params;
use crate::identity::errors::AadError;
use crate::state::{Core, RequestInfo};

/// `Cache-Control: max-age=86400, private` and `Access-Control-Allow-Origin: *`.
fn cacheable(body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=86400, private"),
    );
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// Resolves the tenant of a discovery request: (path segment for URLs, tenant id for issuers).
/// Errors use `error: invalid_tenant`, as the service does on discovery endpoints.
fn discovery_tenant(
    core: &Core,
    info: &RequestInfo,
    segment: &str,
) -> Result<(String, String), AadError> {
    match core.segment(segment) {
        Ok(TenantSegment::Tenant(t)) => {
            let id = core.directory.tenants[t].seed.id.to_string();
            Ok((id.clone(), id))
        }
        Ok(TenantSegment::Consumers) => Ok((
            CONSUMERS_TENANT_ID.to_owned(),
            CONSUMERS_TENANT_ID.to_owned(),
        )),
        // The issuer of the multi-tenant documents holds the literal placeholder.
        Ok(TenantSegment::Common | TenantSegment::Organizations) => {
            Ok((segment.to_ascii_lowercase(), "{tenantid}".to_owned()))
        }
        Err(mut e) => {
            e.error = "invalid_tenant";
            Err(e.in_context(info))
        }
    }
}

fn common_claims() -> Value {
    json!([
        "sub",
        "iss",
        "cloud_instance_name",
        "cloud_instance_host_name",
        "cloud_graph_host_name",
        "msgraph_host",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "acr",
        "nonce",
        "preferred_username",
        "name",
        "tid",
        "ver",
        "at_hash",
        "c_hash",
        "email"
    ])
}

pub(crate) async fn openid_v2(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(tenant): Path<String>,
) -> Response {
    let (seg, tid) = match discovery_tenant(&core, &info, &tenant) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let base = core.cloud_base(info.cloud);
    cacheable(json!({
        "token_endpoint": format!("{base}/{seg}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{seg}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        // UNVERIFIED for the national clouds: the recorded document is the global one.
        "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
        "authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{seg}/oauth2/v2.0/logout"),
        "claims_supported": common_claims(),
        "kerberos_endpoint": format!("{base}/{seg}/kerberos"),
        "tenant_region_scope": info.cloud.region_scope(),
        "cloud_instance_name": info.cloud.instance_name(),
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
        "code_challenge_methods_supported": ["plain", "S256"],
    }))
}

pub(crate) async fn openid_v1(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(tenant): Path<String>,
) -> Response {
    let (seg, tid) = match discovery_tenant(&core, &info, &tenant) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let base = core.cloud_base(info.cloud);
    let issuer = match tid.parse::<uuid::Uuid>() {
        Ok(id) => info.cloud.v1_issuer(&id),
        Err(_) => info
            .cloud
            .v1_issuer(&uuid::Uuid::nil())
            .replace("00000000-0000-0000-0000-000000000000", "{tenantid}"),
    };
    cacheable(json!({
        "token_endpoint": format!("{base}/{seg}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/common/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
        "scopes_supported": ["openid"],
        "issuer": issuer,
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/{seg}/oauth2/authorize"),
        "device_authorization_endpoint": format!("{base}/{seg}/oauth2/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{base}/{seg}/oauth2/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
        "check_session_iframe": format!("{base}/{seg}/oauth2/checksession"),
        "userinfo_endpoint": format!("https://{}/{seg}/openid/userinfo", info.cloud.authority_host()),
        "kerberos_endpoint": format!("{base}/{seg}/kerberos"),
        "tenant_region_scope": info.cloud.region_scope(),
        "cloud_instance_name": info.cloud.instance_name(),
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
}

/// `/{tenant}/discovery/v2.0/keys`: the v2 key set, whose entries carry the `issuer` that
/// tokens signed with them name (with the literal `{tenantid}` placeholder, as the real
/// multi-tenant key set has it).
pub(crate) async fn jwks(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
) -> Response {
    let mut key = core.keys.token_signing.jwk.clone();
    key["issuer"] = json!(format!("{}/{{tenantid}}/v2.0", core.cloud_base(info.cloud)));
    cacheable(json!({"keys": [key]}))
}

/// `/{tenant}/discovery/keys`: the v1 key set, without `issuer`.
fn v1_jwks(core: &Core) -> Response {
    cacheable(json!({"keys": [core.keys.token_signing.jwk]}))
}

/// `/{tenant}/discovery/keys` (v1 JWKS) and `/common/discovery/instance`.
pub(crate) async fn discovery_v1(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path((tenant, what)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Response {
    match what.as_str() {
        "keys" => v1_jwks(&core),
        "instance" if tenant.eq_ignore_ascii_case("common") => instance(
            &core,
            &info,
            &Params::parse(query.unwrap_or_default().as_bytes()),
        ),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Instance discovery: known authority → `tenant_discovery_endpoint` + alias metadata.
fn instance(core: &Core, info: &RequestInfo, params: &Params) -> Response {
    let authority = params
        .get("authorization_endpoint")
        .and_then(|a| url::Url::parse(a).ok());
    let port = core.base_url.port_or_known_default().unwrap_or(443);
    let ours = |u: &url::Url| {
        u.scheme() == "https"
            && u.port_or_known_default() == Some(port)
            && matches!(u.host_str(), Some(h) if h == "127.0.0.1" || h == "localhost" || Cloud::ALL.iter().any(|c| c.host_alias() == Some(h)))
    };
    let Some(authority) = authority.filter(ours) else {
        let e = AadError::new("invalid_instance", 50049, "Unknown or invalid instance.")
            .in_context(info);
        return e.into_response();
    };
    let (cloud, path) = crate::cloud::split_path(authority.path(), authority.host_str());
    let tenant = path
        .trim_start_matches('/')
        .split('/')
        .next()
        .filter(|t| !t.is_empty())
        .unwrap_or("common");
    let hosts: Vec<String> = ["127.0.0.1", "localhost"]
        .into_iter()
        .chain(Cloud::ALL.iter().filter_map(|c| c.host_alias()))
        .map(|h| format!("{h}:{port}"))
        .collect();
    let preferred = format!("{}:{port}", core.base_url.host_str().unwrap_or("127.0.0.1"));
    cacheable(json!({
        "tenant_discovery_endpoint": format!("{}/{tenant}/v2.0/.well-known/openid-configuration", core.cloud_base(cloud)),
        "api-version": params.get("api-version").unwrap_or("1.1"),
        "metadata": [{"preferred_network": preferred, "preferred_cache": preferred, "aliases": hosts}],
    }))
}

/// `GET /common/userrealm/{username}`: `Federated` for a tenant's federated domains, `Managed`
/// for its other domains, `Unknown` otherwise.
pub(crate) async fn user_realm(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path((tenant, username)): Path<(String, String)>,
) -> Response {
    if !tenant.eq_ignore_ascii_case("common") {
        return StatusCode::NOT_FOUND.into_response();
    }
    let domain = username
        .rsplit_once('@')
        .map_or(username.as_str(), |(_, d)| d);
    let federated = core.directory.tenants.iter().find(|t| {
        t.seed
            .federated_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    });
    let body = match (federated, core.directory.tenant(domain)) {
        (Some(tenant), _) => {
            let seed = &tenant.seed;
            json!({
                "ver": "1.0",
                "account_type": "Federated",
                "domain_name": domain.to_ascii_lowercase(),
                "federation_protocol": "WSTrust",
                "federation_metadata_url": format!("https://sts.{domain}/adfs/services/trust/mex"),
                "federation_active_auth_url": format!("https://sts.{domain}/adfs/services/trust/2005/usernamemixed"),
                "cloud_instance_name": info.cloud.instance_name(),
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
                "FederationBrandName": seed.display_name.as_deref().unwrap_or(&seed.name),
            })
        }
        (None, Some(t)) => {
            let seed = &core.directory.tenants[t].seed;
            json!({
                "ver": "1.0",
                "account_type": "Managed",
                "domain_name": domain.to_ascii_lowercase(),
                "cloud_instance_name": info.cloud.instance_name(),
                "cloud_audience_urn": "urn:federation:MicrosoftOnline",
                "FederationBrandName": seed.display_name.as_deref().unwrap_or(&seed.name),
            })
        }
        (None, None) => {
            json!({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": info.cloud.instance_name()})
        }
    };
    axum::Json(body).into_response()
}
