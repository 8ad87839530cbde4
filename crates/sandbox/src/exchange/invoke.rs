//! Running a `CmdletInput` request: body parsing, paging parameters, the cmdlet, persisting its
//! change (on the blocking pool, before answering), and the response (shared by InvokeCommand
//! and the legacy endpoint).
//!
//! The body is parsed by `serde_json`, whose recursion limit (128 levels) refuses deeper JSON
//! with a parse error (400) instead of exhausting the stack; `-Filter` has its own limit
//! (`filter::MAX_DEPTH`).

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

use crate::exchange::CmdletName;
use crate::exchange::auth::{self, Caller};
use crate::exchange::cmdlets::{self, Call, Done};
use crate::exchange::errors::{self, ExoError};
use crate::exchange::paging::{self, Output};
use crate::state::{Core, RequestInfo};

/// The `CmdletInput` envelope.
#[derive(Debug)]
pub(crate) struct CmdletInput {
    pub name: String,
    pub parameters: Map<String, Value>,
}

/// Parses `{"CmdletInput":{"CmdletName":…,"Parameters":{…}}}`.
pub(crate) fn parse_input(body: &[u8]) -> Result<CmdletInput, ExoError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| errors::bad_request_body(&e.to_string()))?;
    let input = value
        .get("CmdletInput")
        .and_then(Value::as_object)
        .ok_or_else(|| errors::bad_request_body("missing 'CmdletInput' object"))?;
    let name = input
        .get("CmdletName")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| errors::bad_request_body("missing 'CmdletName'"))?;
    let parameters = match input.get("Parameters") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(errors::bad_request_body("'Parameters' must be an object")),
    };
    Ok(CmdletInput {
        name: name.trim().to_owned(),
        parameters,
    })
}

pub(crate) async fn invoke_command(
    State(core): State<Arc<Core>>,
    Extension(info): Extension<RequestInfo>,
    Path(tenant): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let caller = match auth::authenticate(&core, &info, &tenant, &headers) {
        Ok(caller) => caller,
        Err(e) => return e.into_response(),
    };
    let url = format!(
        "{}/adminapi/beta/{tenant}/InvokeCommand",
        core.cloud_base(info.cloud)
    );
    let context = format!(
        "{}/adminapi/beta/{tenant}/$metadata#Collection(Exchange.GenericHashTable)",
        core.cloud_base(info.cloud)
    );
    execute(
        &core,
        &caller,
        &headers,
        query.as_deref(),
        &body,
        &url,
        &context,
    )
    .await
}

/// Runs the cmdlet in `body` for `caller` and builds the response. `url` is where the next
/// page is fetched (same body, plus `$skiptoken`).
pub(crate) async fn execute(
    core: &Core,
    caller: &Caller,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
    url: &str,
    context: &str,
) -> Response {
    let input = match parse_input(body) {
        Ok(input) => input,
        Err(e) => return e.into_response(),
    };
    let query_params: Vec<(String, String)> =
        url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        query_params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let skip = match param("$skiptoken") {
        None => 0,
        Some(token) => match paging::decode_skip(token) {
            Some(n) => n,
            None => return errors::bad_request_body("the $skiptoken is not valid").into_response(),
        },
    };
    let select: Vec<String> = param("$select")
        .map(|s| {
            s.split(',')
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let prefer = headers.get("prefer").and_then(|v| v.to_str().ok());
    let (page_size, applied) = paging::page_size(prefer);
    let call = Call {
        store: &core.exchange,
        org: &core.directory.tenants[caller.tenant],
        caller,
        name: &input.name,
        parameters: &input.parameters,
        skip,
        page_size,
    };
    let outcome = cmdlets::run(&call);
    let mut response = match outcome {
        Ok(Done { output, write }) => {
            let persisted = match write {
                Some(write) => core.exchange.persist(write).await,
                None => Ok(()),
            };
            match persisted {
                Ok(()) => success(&output, url, context, &select, query_params.as_slice()),
                Err(e) => errors::task_error(e.to_string()).into_response(),
            }
        }
        Err(e) => e.into_response(),
    };
    if let Some(n) = applied
        && response.status() == StatusCode::OK
        && let Ok(v) = HeaderValue::from_str(&format!("odata.maxpagesize={n}"))
    {
        response.headers_mut().insert("preference-applied", v);
    }
    response.extensions_mut().insert(CmdletName(input.name));
    response
}

fn success(
    output: &Output,
    url: &str,
    context: &str,
    select: &[String],
    query: &[(String, String)],
) -> Response {
    let next_link = output.next.map(|position| {
        // `url` is the sandbox's base URL plus a tenant segment that authentication resolved
        // (a GUID or a domain), or the legacy path: always a valid URL.
        let mut link =
            url::Url::parse(url).expect("built from the base URL and a resolved tenant segment");
        {
            let mut pairs = link.query_pairs_mut();
            for (k, v) in query.iter().filter(|(k, _)| k != "$skiptoken") {
                pairs.append_pair(k, v);
            }
            pairs.append_pair("$skiptoken", &paging::encode_skip(position));
        }
        link.to_string()
    });
    let body = paging::write_body(context, output, next_link.as_deref(), select);
    (
        [(
            header::CONTENT_TYPE,
            "application/json; odata.metadata=minimal; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
