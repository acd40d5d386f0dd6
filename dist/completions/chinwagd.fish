# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_chinwagd_global_optspecs
    string join \n config= check-config print-config data-dir= require-accounts registration= mailbox-max-messages= mailbox-max-bytes= mailbox-max-age= listen= text-listen= admin-listen= tls-listen= tls-cert= tls-key= web-listen= web-tls web-origin= max-connections= max-unregistered= max-unregistered-per-address= max-connections-per-address= connect-rate= connect-burst= ipv6-prefix= exempt= max-frame-bytes= max-hello-bytes= registration-timeout= frame-timeout= ping-interval= max-missed-pings= max-in-flight-bytes= outbox-high-water= outbox-limit= slow-consumer-deadline= rate-limit= rate-burst= flood-grace= log= log-format= threads= shutdown-grace= test-wedge-actor-after= h/help V/version
end

function __fish_chinwagd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_chinwagd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_chinwagd_using_subcommand
    set -l cmd (__fish_chinwagd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c chinwagd -n "__fish_chinwagd_needs_command" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l registration -d 'Whether clients may register nicknames themselves (`chinwag account create`); closed, only the operator does (`chinwagd account create`)' -r -f -a "open\t'Anyone may register a free nickname'
closed\t'Only the operator creates accounts'"
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l mailbox-max-messages -d 'Most messages one mailbox holds; past it, MAILBOX_FULL' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l mailbox-max-bytes -d 'Most bytes one mailbox holds (texts and names); past it, MAILBOX_FULL' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l mailbox-max-age -d 'How long a stored message waits before it is dropped unread (its owner is told how many at the next login). Units: s, m, h, d' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l listen -d 'Address to listen on for the binary protocol. A host name is resolved, and the first address it has is used' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l text-listen -d 'Also accept plain-text (netcat/telnet) users on this address. Off unless given' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l admin-listen -d 'Serve the admin HTTP endpoint on this address: /metrics (Prometheus), /healthz, /readyz and /connz. Off unless given; keep it on loopback or behind a firewall (it has no authentication)' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l tls-listen -d 'Also accept the binary protocol over TLS (1.2 or 1.3) on this address, with --tls-cert and --tls-key. Off unless given' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l tls-cert -d 'The TLS certificate chain, PEM, the server\'s own certificate first (certbot\'s fullchain.pem). Read again on SIGHUP' -r -F
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l tls-key -d 'The TLS certificate\'s private key, PEM (PKCS#8, PKCS#1 or SEC1; certbot\'s privkey.pem). Read again on SIGHUP' -r -F
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l web-listen -d 'Serve the web gateway on this address: the binary protocol over WebSocket at /ws (subprotocol chinwag.v1) and the web page at /. Off unless given' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l web-origin -d 'A web page origin allowed to open a WebSocket, as a browser sends it (https://chat.example.org); repeat or separate with commas. Default: only the gateway\'s own pages (the origin\'s host and port are those of the request\'s Host header). Clients that send no Origin (programs, not browsers) are always allowed' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-connections -d 'Registered users at once; a connection beyond gets a "server full" error' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-unregistered -d 'Connections still waiting to register, capped apart from registered ones' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-unregistered-per-address -d 'Connections from one address that have not registered yet (IPv6: one prefix, see --ipv6-prefix)' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-connections-per-address -d 'Registered connections from one address' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l connect-rate -d 'New connections one address may open per second, sustained' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l connect-burst -d 'New connections one address may open at once after a quiet spell' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l ipv6-prefix -d 'IPv6 addresses are limited by this prefix length, not one by one' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l exempt -d 'Addresses not limited per address, as CIDRs (e.g. a trusted proxy: `10.0.0.5/32`); repeat or separate with commas. Default: loopback (`127.0.0.0/8` and `::1/128`); give `--exempt none` to limit everyone' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-frame-bytes -d 'Largest frame payload accepted from a registered client, in bytes' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-hello-bytes -d 'Largest frame payload accepted before registration, in bytes' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l registration-timeout -d 'Time allowed to complete HELLO after connecting' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l frame-timeout -d 'Time a frame\'s bytes may stop arriving midway before the connection is closed' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l ping-interval -d 'Silence after which a registered client is pinged' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-missed-pings -d 'Consecutive unanswered pings after which a client is closed' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l max-in-flight-bytes -d 'Bytes of one connection\'s messages on their way through the hub at once; past them its socket is not read until some are routed' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l outbox-high-water -d 'Bytes queued for one client above which its publishers are paused' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l outbox-limit -d 'Bytes queued for one client at which it is cut as a slow consumer' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l slow-consumer-deadline -d 'Time a client\'s queue may stay above the high-water mark, or a write may make no progress, before it is cut as a slow consumer' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l rate-limit -d 'Flood control: messages per second per connection, e.g. `10/s`. Off unless given' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l rate-burst -d 'Flood control: messages that may be sent at once (with --rate-limit)' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l flood-grace -d 'Flood control: how long a client may keep flooding before it is disconnected' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l log -d 'Log filter, in `tracing_subscriber`\'s `EnvFilter` syntax (e.g. `info`, `chinwag_hub=debug`). `RUST_LOG` is used when unset' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l log-format -d 'Log format: `text` lines or `json` objects on stderr, or straight to systemd\'s `journal`; `auto` is the journal when stderr is the journal\'s stream (run by systemd), else text' -r -f -a "auto\t'The journal under systemd, else text'
text\t'Lines on stderr'
json\t'JSON objects on stderr, one per line'
journal\t'systemd\'s journal'"
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l threads -d 'Worker threads of the runtime (default: one per core)' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l shutdown-grace -d 'How long to wait on shutdown for queued frames to be flushed (units as the other durations; `--shutdown-grace-secs 5`, its old name, still works)' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l test-wedge-actor-after -d 'A test hook, not for use: after this long, wedge the hub\'s actor for a minute (the systemd watchdog\'s test)' -r
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l check-config -d 'Check the configuration (flags, environment and file) and exit: 0 and one line when it is good, else the error and 1'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l print-config -d 'Print the effective configuration as TOML, each setting with where it came from, and exit'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l require-accounts -d 'Admit only registered users: a HELLO without a password is refused with ACCOUNT_REQUIRED'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -l web-tls -d 'Serve the web gateway over TLS (HTTPS and wss:), with --tls-cert and --tls-key (the same certificate as --tls-listen, reloaded with it)'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -s V -l version -d 'Print version'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -f -a "account" -d 'Create, list, delete accounts or set a password, on the data directory (with the daemon stopped)'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -f -a "completions" -d 'Print a shell completion script for chinwagd to standard output (e.g. `chinwagd completions bash > /etc/bash_completion.d/chinwagd`)'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -f -a "man" -d 'Print chinwagd\'s manual page (roff, section 8) to standard output (e.g. `chinwagd man > chinwagd.8`)'
complete -c chinwagd -n "__fish_chinwagd_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -f -a "create" -d 'Register a nickname'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -f -a "passwd" -d 'Set an account\'s password (no need to know the old one)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -f -a "list" -d 'List every account: nickname, created, last seen, stored messages'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -f -a "delete" -d 'Delete an account and every message stored for it'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and not __fish_seen_subcommand_from create passwd list delete help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from create" -l nick -d 'The nickname' -r
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from create" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from create" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from create" -l password-stdin -d 'Read the password from the first line of standard input (otherwise CHINWAG_PASSWORD, or a prompt on a terminal)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from passwd" -l nick -d 'The nickname' -r
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from passwd" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from passwd" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from passwd" -l password-stdin -d 'Read the new password from the first line of standard input'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from passwd" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from list" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from list" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from delete" -l nick -d 'The nickname' -r
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from delete" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from delete" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "create" -d 'Register a nickname'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "passwd" -d 'Set an account\'s password (no need to know the old one)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "list" -d 'List every account: nickname, created, last seen, stored messages'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "delete" -d 'Delete an account and every message stored for it'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand account; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand completions" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand completions" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand completions" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand man" -l config -d 'The configuration file, TOML: every flag below is a key spelled as the flag without its dashes (`max-connections = 10000`). Flags win over the environment (`CHINWAGD_MAX_CONNECTIONS`), which wins over the file, which wins over the defaults. Default: /etc/chinwag/chinwagd.toml when it exists' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand man" -l data-dir -d 'The data directory: accounts and mailboxes (`chinwag.db`, SQLite), created if missing. One daemon at a time may use it' -r -F
complete -c chinwagd -n "__fish_chinwagd_using_subcommand man" -s h -l help -d 'Print help'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and not __fish_seen_subcommand_from account completions man help" -f -a "account" -d 'Create, list, delete accounts or set a password, on the data directory (with the daemon stopped)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and not __fish_seen_subcommand_from account completions man help" -f -a "completions" -d 'Print a shell completion script for chinwagd to standard output (e.g. `chinwagd completions bash > /etc/bash_completion.d/chinwagd`)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and not __fish_seen_subcommand_from account completions man help" -f -a "man" -d 'Print chinwagd\'s manual page (roff, section 8) to standard output (e.g. `chinwagd man > chinwagd.8`)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and not __fish_seen_subcommand_from account completions man help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "create" -d 'Register a nickname'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "passwd" -d 'Set an account\'s password (no need to know the old one)'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "list" -d 'List every account: nickname, created, last seen, stored messages'
complete -c chinwagd -n "__fish_chinwagd_using_subcommand help; and __fish_seen_subcommand_from account" -f -a "delete" -d 'Delete an account and every message stored for it'
