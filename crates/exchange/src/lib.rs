//! exo's client of the Exchange admin REST API.
//!
//! - [`cmdlet`]: a cmdlet and its parameters, parsed from PowerShell-style arguments
//!   (`-Identity alice -ResultSize 10 -Confirm:$false`) into the `CmdletInput` envelope;
//! - [`invoke`]: `POST {exchange}/adminapi/beta/{tenant}/InvokeCommand` with the headers the
//!   reference module sends, `@odata.nextLink` paging, throttling and retries, one token
//!   renewal on a 401, and rows handed over page by page as they arrive; or the same over
//!   remote PowerShell's legacy endpoint with Basic credentials in a shell session.
//!
//! Protocol facts: `docs/exchange-online.md`.

pub mod cmdlet;
pub mod invoke;
