// WildDuck's own protocol servers without its database: the IMAP server of its imap-core
// (the package's test server, imap-core/test/test-server.js, which keeps a small mailbox in
// memory) and its POP3 server class (lib/pop3/server.js) with handlers that answer from
// memory. A full WildDuck needs MongoDB and Redis, which Debian does not package; these are
// the connection and protocol layers that a full WildDuck runs, so greetings, logins and
// idle connections measure what WildDuck itself would do before it reaches its database.
//
//   node bench/wildduck.js WILDDUCK_DIR IMAP_PORT POP3_PORT LOG_FILE
//
// Users: `testuser` / `pass` (the test server's). Logs: one JSON object per line at info
// level and above in LOG_FILE, as every server in the comparison writes its logs to a file.
'use strict';

const fs = require('fs');
const path = require('path');
const util = require('util');

const [dir, imapPort, pop3Port, logFile] = process.argv.slice(2);
if (!dir || !imapPort || !pop3Port || !logFile) {
    console.error('usage: node wildduck.js WILDDUCK_DIR IMAP_PORT POP3_PORT LOG_FILE');
    process.exit(2);
}

const log = fs.createWriteStream(logFile, { flags: 'a' });
function line(level) {
    return (data, message, ...args) => {
        log.write(JSON.stringify(Object.assign({ time: new Date().toISOString(), level, msg: util.format(message, ...args) }, data)) + '\n');
    };
}
const logger = { info: line('info'), warn: line('warn'), error: line('error'), debug: () => false, trace: () => false };

const testServer = require(path.join(dir, 'imap-core/test/test-server.js'));
const POP3Server = require(path.join(dir, 'lib/pop3/server.js'));

// ignoreSTARTTLS: LOGIN in the clear, as the other servers allow it on loopback here.
const imap = testServer({ secure: false, ignoreSTARTTLS: true, logger, skipFetchLog: true });
imap.listen(Number(imapPort), '127.0.0.1', () => console.log(`wildduck: IMAP on 127.0.0.1:${imapPort}`));

const pop3 = new POP3Server({
    secure: false,
    logger,
    onAuth(auth, session, callback) {
        if (auth.username !== 'testuser' || auth.password !== 'pass') {
            return callback(null, { message: 'Authentication failed' });
        }
        callback(null, { user: { id: 'id.testuser', username: 'testuser' } });
    },
    onListMessages(session, callback) {
        callback(null, { messages: [], count: 0, size: 0 });
    },
    onFetchMessage(message, session, callback) {
        callback(new Error('no messages'));
    },
    onUpdate(update, session, callback) {
        callback(null, false);
    }
});
pop3.listen(Number(pop3Port), '127.0.0.1', () => console.log(`wildduck: POP3 on 127.0.0.1:${pop3Port}`));

for (const signal of ['SIGTERM', 'SIGINT']) {
    process.on(signal, () => log.end(() => process.exit(0)));
}
