-- HQ's books: accounts, payment codes, authorizations, settlements, the
-- freeze list applied to the books, and the published documents. Every
-- primary key is a natural key (an account id, a credential, a settlement
-- id, a document's scope, a freeze list version): nothing needs a sequence.
-- Versions of signed documents are uint64, so they are numeric(20), not
-- bigint.

CREATE TABLE accounts (
    id       text   PRIMARY KEY,
    currency text   NOT NULL,
    balance  bigint NOT NULL CHECK (balance >= 0),
    funded   bigint NOT NULL
);

CREATE TABLE payment_codes (
    code       text PRIMARY KEY,
    account_id text NOT NULL
);

CREATE TABLE authorizations (
    credential_key bytea       PRIMARY KEY,
    id             text        UNIQUE,
    credential     text        NOT NULL,
    store_id       text        NOT NULL,
    lane           text        NOT NULL,
    pos_txn_id     text        NOT NULL,
    account_id     text        NOT NULL,
    amount         bigint      NOT NULL,
    currency       text        NOT NULL,
    status         text        NOT NULL,
    reason         text        NOT NULL,
    message        text        NOT NULL,
    created_at     timestamptz NOT NULL,
    captured_by    text        NOT NULL,
    voided_at      timestamptz
);

CREATE INDEX authorizations_status_created ON authorizations (status, created_at);

CREATE TABLE settlements (
    id               text          PRIMARY KEY,
    seq              numeric(20)   NOT NULL,
    kind             text          NOT NULL,
    store_id         text          NOT NULL,
    lane             text          NOT NULL,
    pos_txn_id       text          NOT NULL,
    authorization_id text          NOT NULL,
    account_id       text          NOT NULL,
    token_id         bytea,
    amount           bigint        NOT NULL,
    currency         text          NOT NULL,
    mode             text          NOT NULL,
    created_at       timestamptz,
    reverses_id      text          NOT NULL,
    status           text          NOT NULL,
    message          text          NOT NULL,
    booked_at        timestamptz   NOT NULL,
    reversed_by      text          NOT NULL
);

CREATE TABLE frozen_accounts (
    account_id text        PRIMARY KEY,
    version    numeric(20) NOT NULL,
    reason     text        NOT NULL
);

CREATE TABLE documents (
    kind         text        NOT NULL,
    store_id     text        NOT NULL,
    version      numeric(20) NOT NULL,
    raw          bytea       NOT NULL,
    published_at timestamptz NOT NULL,
    PRIMARY KEY (kind, store_id)
);

CREATE TABLE freeze_log (
    version      numeric(20) PRIMARY KEY,
    snapshot     boolean     NOT NULL,
    raw          bytea       NOT NULL,
    published_at timestamptz NOT NULL
);
