//! Tests of telling exo's options from a cmdlet's words.

use super::*;

fn split_line(line: &str) -> Split {
    split(line.split(' ').map(str::to_owned).collect())
}

fn words(line: &str) -> Vec<String> {
    if line.is_empty() {
        Vec::new()
    } else {
        line.split(' ').map(str::to_owned).collect()
    }
}

#[test]
fn exo_options_are_told_apart_from_cmdlet_words() {
    let cases = [
        (
            "--output csv Get-Mailbox -ResultSize 5 --property Name,Alias -Filter x --all-connections",
            "--output csv --property Name,Alias --all-connections",
            "Get-Mailbox -ResultSize 5 -Filter x",
            "",
        ),
        (
            "-o json Get-Mailbox -o x",
            "-o json",
            "Get-Mailbox -o x",
            "",
        ),
        (
            "Get-Mailbox -Notes --urgent --output=json",
            "--output json",
            "Get-Mailbox -Notes --urgent",
            "",
        ),
        (
            "Get-Mailbox -v --verbose -vv",
            "-v --verbose -vv",
            "Get-Mailbox",
            "",
        ),
        (
            "Get-Mailbox --plugin-dir /p --plugin-dir=/q",
            "",
            "Get-Mailbox",
            "/p /q",
        ),
        (
            "Get-Mailbox -- --output json",
            "",
            "Get-Mailbox --output json",
            "",
        ),
    ];
    for (line, options, cmdlet, plugin_dirs) in cases {
        assert_eq!(
            split_line(line),
            Split {
                options: words(options),
                cmdlet: words(cmdlet),
                plugin_dirs: words(plugin_dirs)
            },
            "{line}"
        );
    }
}
