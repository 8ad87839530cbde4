//! Exchange admin API errors (`docs/exchange-online.md`, "Responses and errors"):
//! `{"error":{"code","message","details":[{"code","message","target"}],"innererror":{"type",
//! "internalException":{"message"}}}}`, `details[0].message` =
//! `<ExceptionCode>|<ExceptionType>|<message>`, `details[0].code` = the PowerShell
//! ErrorCategory, plus an `x-ExceptionType` header.
//!
//! Every error carries a non-empty exception code: `Ex6F9304` for
//! ManagementObjectNotFoundException is the one seen in captures; the others are made up in
//! the real format (`Ex` + six hex digits), one per exception type ([`exception_code`]), since
//! only their shape is known (UNVERIFIED values).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered by InvokeCommand or the legacy endpoint (boxed: errors are rare, results
/// are common).
#[derive(Debug, Clone)]
pub(crate) struct ExoError(Box<Details>);

/// What an [`ExoError`] says.
#[derive(Debug, Clone)]
pub(crate) struct Details {
    pub status: StatusCode,
    pub message: String,
    /// PowerShell ErrorCategory (`details[0].code`).
    pub category: &'static str,
    /// `Ex…`, never empty.
    pub exception_code: String,
    pub exception_type: &'static str,
    pub target: String,
    /// `WWW-Authenticate` for 401s.
    pub www_authenticate: Option<String>,
}

impl ExoError {
    pub fn new(
        status: StatusCode,
        category: &'static str,
        exception_type: &'static str,
        message: impl Into<String>,
    ) -> ExoError {
        ExoError(Box::new(Details {
            status,
            message: message.into(),
            category,
            exception_code: exception_code(exception_type),
            exception_type,
            target: String::new(),
            www_authenticate: None,
        }))
    }

    pub fn target(mut self, target: impl Into<String>) -> ExoError {
        self.0.target = target.into();
        self
    }

    /// Adds a `WWW-Authenticate` challenge.
    pub fn challenge(mut self, value: String) -> ExoError {
        self.0.www_authenticate = Some(value);
        self
    }

    fn code(&self) -> &'static str {
        match self.0.status {
            StatusCode::BAD_REQUEST => "BadRequest",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "NotFound",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            StatusCode::TOO_MANY_REQUESTS => "TooManyRequests",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            _ => "InternalServerError",
        }
    }

    pub fn body(&self) -> serde_json::Value {
        let d = &self.0;
        json!({"error": {
            "code": self.code(),
            "message": d.message,
            "details": [{
                "code": d.category,
                "message": format!("{}|{}|{}", d.exception_code, d.exception_type, d.message),
                "target": d.target,
            }],
            "innererror": {
                "message": d.message,
                "type": d.exception_type,
                "internalException": {"message": d.message, "type": d.exception_type},
            },
        }})
    }
}

impl IntoResponse for ExoError {
    fn into_response(self) -> Response {
        let mut response = (self.0.status, axum::Json(self.body())).into_response();
        let d = &self.0;
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(d.exception_type) {
            headers.insert("x-ExceptionType", v);
        }
        if let Some(v) = d
            .www_authenticate
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        response
    }
}

/// The exception code of an exception type: the captured one where known, else `Ex` and the
/// first six hex digits of the type name's SHA-256 (stable, in the real format).
pub(crate) fn exception_code(exception_type: &str) -> String {
    match exception_type {
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException" => {
            "Ex6F9304".to_owned()
        }
        other => {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, other.as_bytes());
            let hex: String = digest.as_ref()[..3]
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect();
            format!("Ex{hex}")
        }
    }
}

// The catalogue.

pub(crate) fn not_found(identity: &str) -> ExoError {
    ExoError::new(
        StatusCode::NOT_FOUND,
        "NotSpecified",
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException",
        format!(
            "The operation couldn't be performed because object '{identity}' couldn't be found on 'SANPR01A001DC01.SANPR01A001.PROD.OUTLOOK.COM'."
        ),
    )
}

pub(crate) fn ambiguous(identity: &str) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "NotSpecified",
        "Microsoft.Exchange.Configuration.Tasks.ManagementObjectAmbiguousException",
        format!(
            "The operation couldn't be performed because '{identity}' matches multiple entries."
        ),
    )
}

pub(crate) fn unknown_cmdlet(name: &str) -> ExoError {
    // UNVERIFIED: third parties saw a 403 with an empty body for unknown cmdlets and for cmdlets
    // outside the caller's RBAC roles; the sandbox returns the same status with a readable body.
    ExoError::new(
        StatusCode::FORBIDDEN,
        "ObjectNotFound",
        "System.Management.Automation.CommandNotFoundException",
        format!("The term '{name}' is not recognized as a name of a cmdlet, function, script file, or executable program. Check the spelling of the name, or if a path was included, verify that the path is correct and try again."),
    )
    .target(name)
}

pub(crate) fn no_such_parameter(name: &str) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "InvalidArgument",
        "System.Management.Automation.ParameterBindingException",
        format!("A parameter cannot be found that matches parameter name '{name}'."),
    )
    .target(name)
}

pub(crate) fn bad_argument(parameter: &str, message: String) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "InvalidData",
        "System.Management.Automation.ParameterBindingException",
        message,
    )
    .target(parameter)
}

pub(crate) fn missing_mandatory(parameters: &str) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "InvalidArgument",
        "System.Management.Automation.ParameterBindingException",
        format!(
            "Cannot process command because of one or more missing mandatory parameters: {parameters}."
        ),
    )
}

pub(crate) fn bad_request_body(detail: &str) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "InvalidArgument",
        "Microsoft.Exchange.Admin.OData.Core.ODataException",
        format!("The request body is not a valid CmdletInput payload: {detail}"),
    )
}

pub(crate) fn task_error(message: String) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "NotSpecified",
        "Microsoft.Exchange.Configuration.Tasks.TaskException",
        message,
    )
}

pub(crate) fn already_exists(message: String) -> ExoError {
    ExoError::new(
        StatusCode::BAD_REQUEST,
        "NotSpecified",
        "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException",
        message,
    )
}

#[cfg(test)]
mod tests;
