//! Snapshot tests of every output format.

use expect_test::{Expect, expect};

use super::*;

fn rows<'a>(json: &[&'a str]) -> Vec<&'a str> {
    json.to_vec()
}

const MAILBOXES: &[&str] = &[
    r##"{"@odata.type":"#Exchange.Mailbox","Name":"alice","Alias":"alice","Database":"EURPR01DG001","ProhibitSendQuota":"99 GB","ExternalDirectoryObjectId":"1f0c","EmailAddresses":["SMTP:alice@contoso.com","smtp:a@contoso.com"],"Guid":"9a"}"##,
    r##"{"@odata.type":"#Exchange.Mailbox","Name":"bob, the builder","Alias":"bob","Database":null,"ProhibitSendQuota":"a quota that is much longer than anything on the first page of rows","ExternalDirectoryObjectId":"2e1d","EmailAddresses":[],"Guid":"9b"}"##,
];

fn render(
    format: Format,
    cmdlet: &str,
    properties: Option<&[&str]>,
    tagged: bool,
    pages: &[&[&str]],
    expected: Expect,
) {
    let properties = properties.map(|p| p.iter().map(|s| (*s).to_owned()).collect());
    let mut renderer = Renderer::new(Vec::new(), format, cmdlet, properties, tagged);
    for page in pages {
        renderer
            .write_page(&rows(page), "contoso.onmicrosoft.com")
            .unwrap();
    }
    renderer.finish().unwrap();
    expected.assert_eq(&String::from_utf8(renderer.out).unwrap());
}

#[test]
fn json_passes_exchange_s_rows_through_untouched() {
    render(
        Format::Json,
        "Get-Mailbox",
        None,
        false,
        &[&MAILBOXES[..1]],
        expect![[r##"
        {"@odata.type":"#Exchange.Mailbox","Name":"alice","Alias":"alice","Database":"EURPR01DG001","ProhibitSendQuota":"99 GB","ExternalDirectoryObjectId":"1f0c","EmailAddresses":["SMTP:alice@contoso.com","smtp:a@contoso.com"],"Guid":"9a"}
    "##]],
    );
}

#[test]
fn json_rows_are_tagged_with_their_connection_and_can_be_narrowed() {
    render(
        Format::Json,
        "Get-Mailbox",
        None,
        true,
        &[&[MAILBOXES[0], "{}", "{\n \"Name\": \"x\"\n}"]],
        expect![[r##"
        {"ExoConnection":"contoso.onmicrosoft.com","@odata.type":"#Exchange.Mailbox","Name":"alice","Alias":"alice","Database":"EURPR01DG001","ProhibitSendQuota":"99 GB","ExternalDirectoryObjectId":"1f0c","EmailAddresses":["SMTP:alice@contoso.com","smtp:a@contoso.com"],"Guid":"9a"}
        {"ExoConnection":"contoso.onmicrosoft.com"}
        {"ExoConnection":"contoso.onmicrosoft.com","Name":"x"}
    "##]],
    );
    render(
        Format::Json,
        "Get-Mailbox",
        Some(&["alias", "Missing"]),
        false,
        &[MAILBOXES],
        expect![[r#"
        {"alias":"alice","Missing":null}
        {"alias":"bob","Missing":null}
    "#]],
    );
}

#[test]
fn a_table_uses_the_cmdlet_s_default_view_and_keeps_the_first_page_s_widths() {
    render(
        Format::Table,
        "Get-Mailbox",
        None,
        false,
        &[&MAILBOXES[..1], &MAILBOXES[1..]],
        expect![[r#"
        Name  Alias Database     ProhibitSendQuota ExternalDirectoryObjectId
        ----  ----- --------     ----------------- -------------------------
        alice alice EURPR01DG001 99 GB             1f0c
        bob,… bob                a quota that is…  2e1d
    "#]],
    );
    render(
        Format::Table,
        "Get-Widget",
        None,
        true,
        &[&[r#"{"Id":1,"Tags":["a","b"],"Ok":true}"#]],
        expect![[r#"
        ExoConnection           Id Tags   Ok
        -------------           -- ----   --
        contoso.onmicrosoft.com 1  {a, b} true
    "#]],
    );
}

#[test]
fn csv_has_every_property_and_quotes_what_needs_it() {
    render(
        Format::Csv,
        "Get-Mailbox",
        Some(&["Name", "EmailAddresses", "Database"]),
        false,
        &[MAILBOXES],
        expect![[r#"
        Name,EmailAddresses,Database
        alice,"[""SMTP:alice@contoso.com"",""smtp:a@contoso.com""]",EURPR01DG001
        "bob, the builder",[],
    "#]],
    );
}

#[test]
fn a_list_shows_each_row_as_a_block() {
    render(
        Format::List,
        "Get-OrganizationConfig",
        None,
        false,
        &[&[r#"{"Name":"contoso","IsDehydrated":false,"MailTipsAllTipsEnabled":true}"#]],
        expect![[r#"
        Name                   : contoso
        IsDehydrated           : false
        MailTipsAllTipsEnabled : true

    "#]],
    );
}

#[test]
fn tenant_data_cannot_drive_the_terminal() {
    let hostile = r#"{"Name":"evil\nline","DisplayName":"\u001b[31mred\u001b[0m"}"#;
    render(
        Format::Table,
        "Get-Widget",
        None,
        false,
        &[&[hostile]],
        expect![[r#"
        Name       DisplayName
        ----       -----------
        evil\nline \u{1b}[31mred\u{1b}[0m
    "#]],
    );
    render(
        Format::List,
        "Get-Widget",
        None,
        false,
        &[&[hostile]],
        expect![[r#"
        Name        : evil\nline
        DisplayName : \u{1b}[31mred\u{1b}[0m

    "#]],
    );
}

#[test]
fn rows_that_are_not_objects_are_shown_as_a_value_and_csv_columns_come_from_the_first_page() {
    render(
        Format::Table,
        "Get-Widget",
        None,
        false,
        &[&["42", r#""text""#]],
        expect![[r#"
        Value
        -----
        42
        text
    "#]],
    );
    render(
        Format::Csv,
        "Get-Widget",
        None,
        false,
        &[&[r#"{"A":1}"#], &[r#"{"A":2,"B":3}"#]],
        expect![[r#"
        A
        1
        2
    "#]],
    );
}

#[test]
fn csv_cells_a_spreadsheet_would_run_get_a_leading_quote_but_numbers_do_not() {
    let row = r#"{"A":"=1+1","B":"+x","C":"-x","D":"@SUM(A1)","E":"\tx","F":-5,"G":"-2.5","H":"plain","I":"-inf","J":"+NaN","=cmd":1}"#;
    render(
        Format::Csv,
        "Get-Thing",
        None,
        false,
        &[&[row]],
        expect![[r#"
        A,B,C,D,E,F,G,H,I,J,'=cmd
        '=1+1,'+x,'-x,'@SUM(A1),'	x,-5,-2.5,plain,'-inf,'+NaN,1
    "#]],
    );
}
