package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"storegate/central"
	"storegate/gateway"
)

// tx is central.Tx over a pgx transaction, bound to the context of the
// Update or View that began it. Reads of many keys are one query with an
// array parameter (= ANY($1)); writes of many records are one statement
// over unnest() of one array per column.
type tx struct {
	ctx context.Context
	tx  pgx.Tx
}

var _ central.Tx = (*tx)(nil)

// timestamptz is a time as a nullable timestamptz: NULL for the zero time.
func timestamptz(t time.Time) pgtype.Timestamptz {
	return pgtype.Timestamptz{Time: t, Valid: !t.IsZero()}
}

// timeOf is a scanned timestamptz as a time in UTC, zero for NULL.
func timeOf(t pgtype.Timestamptz) time.Time {
	if !t.Valid {
		return time.Time{}
	}
	return t.Time.UTC()
}

// uintText is a uint64 as text for a numeric(20) column, which holds what
// bigint cannot.
func uintText(v uint64) string { return strconv.FormatUint(v, 10) }

func parseUint(s string) (uint64, error) {
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("numeric %q: %w", s, err)
	}
	return v, nil
}

// collect runs a query and scans every row with scan, before any caller
// sees a row: a caller may then query again inside the same transaction.
func collect[T any](t *tx, scan func(pgx.Rows) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := t.tx.Query(t.ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// each calls fn for every scanned row, once all are read.
func each[T any](t *tx, scan func(pgx.Rows) (T, error), fn func(T) error, sql string, args ...any) error {
	all, err := collect(t, scan, sql, args...)
	if err != nil {
		return err
	}
	for _, v := range all {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}

// byKey runs a query of many keys (given as one array argument) and
// returns the rows it finds by key; none for no keys.
func byKey[K comparable, T any](t *tx, what string, scan func(pgx.Rows) (T, error), key func(T) K, n int, sql string, keys any) (map[K]T, error) {
	out := make(map[K]T, n)
	if n == 0 {
		return out, nil
	}
	all, err := collect(t, scan, sql, keys)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	for _, v := range all {
		out[key(v)] = v
	}
	return out, nil
}

// exec runs a statement and returns how many rows it touched.
func (t *tx) exec(sql string, args ...any) (int, error) {
	tag, err := t.tx.Exec(t.ctx, sql, args...)
	if err != nil {
		return 0, err
	}
	return int(tag.RowsAffected()), nil
}

// wantRows fails unless a statement touched n rows.
func wantRows(what string, n int) func(int, error) error {
	return func(got int, err error) error {
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		case got != n:
			return fmt.Errorf("%s: %d of %d records are missing", what, n-got, n)
		}
		return nil
	}
}

// Accounts.

const accountColumns = `id, currency, balance, funded`

func scanAccount(r pgx.Rows) (*central.Account, error) {
	var a central.Account
	return &a, r.Scan(&a.ID, &a.Currency, &a.Balance, &a.Funded)
}

func (t *tx) Accounts(ids []string) (map[string]*central.Account, error) {
	return byKey(t, "accounts", scanAccount, func(a *central.Account) string { return a.ID }, len(ids),
		`SELECT `+accountColumns+` FROM accounts WHERE id = ANY($1::text[])`, ids)
}

func (t *tx) InsertAccount(a *central.Account) (bool, error) {
	n, err := t.exec(`INSERT INTO accounts (`+accountColumns+`) VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
		a.ID, a.Currency, a.Balance, a.Funded)
	if err != nil {
		return false, fmt.Errorf("insert account %s: %w", a.ID, err)
	}
	return n == 1, nil
}

func (t *tx) PutAccounts(accts []*central.Account) error {
	if len(accts) == 0 {
		return nil
	}
	ids, currencies, balances, funded := make([]string, len(accts)), make([]string, len(accts)), make([]int64, len(accts)), make([]int64, len(accts))
	for i, a := range accts {
		ids[i], currencies[i], balances[i], funded[i] = a.ID, a.Currency, a.Balance, a.Funded
	}
	_, err := t.exec(`INSERT INTO accounts (`+accountColumns+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
		ON CONFLICT (id) DO UPDATE SET currency = excluded.currency, balance = excluded.balance, funded = excluded.funded`,
		ids, currencies, balances, funded)
	if err != nil {
		return fmt.Errorf("write accounts: %w", err)
	}
	return nil
}

func (t *tx) EachAccount(fn func(*central.Account) error) error {
	return each(t, scanAccount, fn, `SELECT `+accountColumns+` FROM accounts`)
}

// Payment codes.

func (t *tx) PaymentCode(code string) (string, bool, error) {
	var account string
	err := t.tx.QueryRow(t.ctx, `SELECT account_id FROM payment_codes WHERE code = $1`, code).Scan(&account)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read payment code: %w", err)
	}
	return account, true, nil
}

func (t *tx) InsertPaymentCode(code, account string) (bool, error) {
	n, err := t.exec(`INSERT INTO payment_codes (code, account_id) VALUES ($1, $2) ON CONFLICT (code) DO NOTHING`, code, account)
	if err != nil {
		return false, fmt.Errorf("insert payment code: %w", err)
	}
	return n == 1, nil
}

// Authorizations.

const authorizationColumns = `credential_key, coalesce(id, ''), credential, store_id, lane, pos_txn_id, account_id,
	amount, currency, status, reason, message, created_at, captured_by, voided_at`

func scanAuthorization(r pgx.Rows) (*central.Authorization, error) {
	var (
		a               central.Authorization
		key             []byte
		status, reason  string
		created, voided pgtype.Timestamptz
	)
	err := r.Scan(&key, &a.ID, &a.Credential, &a.StoreID, &a.Lane, &a.POSTxnID, &a.Account,
		&a.Amount, &a.Currency, &status, &reason, &a.Message, &created, &a.CapturedBy, &voided)
	if err != nil {
		return nil, err
	}
	a.Key, a.Status, a.Created, a.VoidedAt = central.CredentialKey(key), central.AuthStatus(status), timeOf(created), timeOf(voided)
	if err := a.Reason.UnmarshalText([]byte(reason)); err != nil {
		return nil, fmt.Errorf("authorization %s: %w", a.Credential, err)
	}
	return &a, nil
}

func keyBytes(keys []central.CredentialKey) [][]byte {
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = []byte(k)
	}
	return out
}

func (t *tx) Authorizations(keys []central.CredentialKey) (map[central.CredentialKey]*central.Authorization, error) {
	return byKey(t, "authorizations", scanAuthorization, func(a *central.Authorization) central.CredentialKey { return a.Key }, len(keys),
		`SELECT `+authorizationColumns+` FROM authorizations WHERE credential_key = ANY($1::bytea[])`, keyBytes(keys))
}

func (t *tx) AuthorizationsByID(ids []string) (map[string]*central.Authorization, error) {
	return byKey(t, "authorizations", scanAuthorization, func(a *central.Authorization) string { return a.ID }, len(ids),
		`SELECT `+authorizationColumns+` FROM authorizations WHERE id = ANY($1::text[])`, ids)
}

func (t *tx) InsertAuthorizations(auths []*central.Authorization) (int, error) {
	if len(auths) == 0 {
		return 0, nil
	}
	n := len(auths)
	var (
		keys                                               = make([][]byte, n)
		ids, creds, stores, lanes, txns, accts, currencies = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		statuses, reasons, messages, capturedBy            = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		amounts                                            = make([]int64, n)
		created, voided                                    = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	)
	for i, a := range auths {
		keys[i], ids[i], creds[i], stores[i], lanes[i], txns[i], accts[i] = []byte(a.Key), a.ID, a.Credential, a.StoreID, a.Lane, a.POSTxnID, a.Account
		amounts[i], currencies[i], statuses[i], reasons[i], messages[i] = a.Amount, a.Currency, string(a.Status), a.Reason.String(), a.Message
		created[i], capturedBy[i], voided[i] = timestamptz(a.Created), a.CapturedBy, timestamptz(a.VoidedAt)
	}
	wrote, err := t.exec(`INSERT INTO authorizations (credential_key, id, credential, store_id, lane, pos_txn_id, account_id,
			amount, currency, status, reason, message, created_at, captured_by, voided_at)
		SELECT k, nullif(i, ''), c, s, l, p, ac, am, cu, st, r, m, cr, cb, v
		FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::bigint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::timestamptz[], $14::text[], $15::timestamptz[])
			AS v(k, i, c, s, l, p, ac, am, cu, st, r, m, cr, cb, v)
		ON CONFLICT (credential_key) DO NOTHING`,
		keys, ids, creds, stores, lanes, txns, accts, amounts, currencies, statuses, reasons, messages, created, capturedBy, voided)
	if err != nil {
		return 0, fmt.Errorf("insert authorizations: %w", err)
	}
	return wrote, nil
}

func (t *tx) UpdateAuthorizations(auths []*central.Authorization) error {
	if len(auths) == 0 {
		return nil
	}
	n := len(auths)
	keys := make([][]byte, n)
	statuses, reasons, messages, capturedBy := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	voided := make([]pgtype.Timestamptz, n)
	for i, a := range auths {
		keys[i], statuses[i], reasons[i], messages[i] = []byte(a.Key), string(a.Status), a.Reason.String(), a.Message
		capturedBy[i], voided[i] = a.CapturedBy, timestamptz(a.VoidedAt)
	}
	return wantRows("update authorizations", n)(t.exec(`UPDATE authorizations AS a
		SET status = v.st, reason = v.r, message = v.m, captured_by = v.cb, voided_at = v.vo
		FROM unnest($1::bytea[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[]) AS v(k, st, r, m, cb, vo)
		WHERE a.credential_key = v.k`,
		keys, statuses, reasons, messages, capturedBy, voided))
}

func (t *tx) HeldBefore(cutoff time.Time, limit int) ([]*central.Authorization, error) {
	all, err := collect(t, scanAuthorization, `SELECT `+authorizationColumns+` FROM authorizations
		WHERE status = $1 AND created_at < $2 ORDER BY created_at, credential_key LIMIT $3`,
		string(central.AuthHeld), cutoff, limit)
	if err != nil {
		return nil, fmt.Errorf("read held authorizations: %w", err)
	}
	return all, nil
}

func (t *tx) EachAuthorization(fn func(*central.Authorization) error) error {
	return each(t, scanAuthorization, fn, `SELECT `+authorizationColumns+` FROM authorizations`)
}

// Settlements.

const settlementColumns = `id, seq::text, kind, store_id, lane, pos_txn_id, authorization_id, account_id, token_id,
	amount, currency, mode, created_at, reverses_id, status, message, booked_at, reversed_by`

func scanSettlement(r pgx.Rows) (*central.BookedSettlement, error) {
	var (
		s                       central.BookedSettlement
		seq, kind, mode, status string
		created, booked         pgtype.Timestamptz
	)
	err := r.Scan(&s.ID, &seq, &kind, &s.StoreID, &s.Lane, &s.POSTxnID, &s.AuthorizationID, &s.Account, &s.TokenID,
		&s.Amount, &s.Currency, &mode, &created, &s.ReversesID, &status, &s.Message, &booked, &s.ReversedBy)
	if err != nil {
		return nil, err
	}
	if s.Seq, err = parseUint(seq); err != nil {
		return nil, fmt.Errorf("settlement %s: %w", s.ID, err)
	}
	if err := s.Status.UnmarshalText([]byte(status)); err != nil {
		return nil, fmt.Errorf("settlement %s: %w", s.ID, err)
	}
	s.Kind, s.Mode, s.CreatedAt, s.BookedAt = gateway.SettlementKind(kind), gateway.Mode(mode), timeOf(created), timeOf(booked)
	return &s, nil
}

func (t *tx) Settlements(ids []string) (map[string]*central.BookedSettlement, error) {
	return byKey(t, "settlements", scanSettlement, func(s *central.BookedSettlement) string { return s.ID }, len(ids),
		`SELECT `+settlementColumns+` FROM settlements WHERE id = ANY($1::text[])`, ids)
}

func (t *tx) InsertSettlements(stls []*central.BookedSettlement) (int, error) {
	if len(stls) == 0 {
		return 0, nil
	}
	n := len(stls)
	var (
		ids, seqs, kinds, stores, lanes, txns, authIDs, accts     = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		currencies, modes, reverses, statuses, messages, reversed = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		tokens                                                    = make([][]byte, n)
		amounts                                                   = make([]int64, n)
		created, booked                                           = make([]pgtype.Timestamptz, n), make([]pgtype.Timestamptz, n)
	)
	for i, s := range stls {
		status, err := s.Status.MarshalText()
		if err != nil {
			return 0, err
		}
		ids[i], seqs[i], kinds[i], stores[i], lanes[i], txns[i] = s.ID, uintText(s.Seq), string(s.Kind), s.StoreID, s.Lane, s.POSTxnID
		authIDs[i], accts[i], tokens[i], amounts[i], currencies[i], modes[i] = s.AuthorizationID, s.Account, s.TokenID, s.Amount, s.Currency, string(s.Mode)
		created[i], reverses[i], statuses[i], messages[i], booked[i], reversed[i] = timestamptz(s.CreatedAt), s.ReversesID, string(status), s.Message, timestamptz(s.BookedAt), s.ReversedBy
	}
	wrote, err := t.exec(`INSERT INTO settlements (id, seq, kind, store_id, lane, pos_txn_id, authorization_id, account_id, token_id,
			amount, currency, mode, created_at, reverses_id, status, message, booked_at, reversed_by)
		SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bytea[],
			$10::bigint[], $11::text[], $12::text[], $13::timestamptz[], $14::text[], $15::text[], $16::text[], $17::timestamptz[], $18::text[])
		ON CONFLICT (id) DO NOTHING`,
		ids, seqs, kinds, stores, lanes, txns, authIDs, accts, tokens, amounts, currencies, modes, created, reverses, statuses, messages, booked, reversed)
	if err != nil {
		return 0, fmt.Errorf("insert settlements: %w", err)
	}
	return wrote, nil
}

func (t *tx) SetReversedBy(reversals map[string]string) error {
	if len(reversals) == 0 {
		return nil
	}
	ids, by := make([]string, 0, len(reversals)), make([]string, 0, len(reversals))
	for id, r := range reversals {
		ids, by = append(ids, id), append(by, r)
	}
	return wantRows("mark captures reversed", len(ids))(t.exec(`UPDATE settlements AS s SET reversed_by = v.r
		FROM unnest($1::text[], $2::text[]) AS v(id, r) WHERE s.id = v.id`, ids, by))
}

func (t *tx) EachSettlement(fn func(*central.BookedSettlement) error) error {
	return each(t, scanSettlement, fn, `SELECT `+settlementColumns+` FROM settlements`)
}

// The freeze list applied to the books.

type frozenRow struct {
	account string
	fa      gateway.FrozenAccount
}

func scanFrozen(r pgx.Rows) (frozenRow, error) {
	var (
		f       frozenRow
		version string
	)
	if err := r.Scan(&f.account, &version, &f.fa.Reason); err != nil {
		return f, err
	}
	v, err := parseUint(version)
	f.fa.Version = v
	return f, err
}

func (t *tx) Frozen(ids []string) (map[string]gateway.FrozenAccount, error) {
	out := make(map[string]gateway.FrozenAccount)
	if len(ids) == 0 {
		return out, nil
	}
	all, err := collect(t, scanFrozen, `SELECT account_id, version::text, reason FROM frozen_accounts WHERE account_id = ANY($1::text[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read frozen accounts: %w", err)
	}
	for _, f := range all {
		out[f.account] = f.fa
	}
	return out, nil
}

func (t *tx) PutFrozen(accounts map[string]gateway.FrozenAccount) error {
	if len(accounts) == 0 {
		return nil
	}
	ids, versions, reasons := make([]string, 0, len(accounts)), make([]string, 0, len(accounts)), make([]string, 0, len(accounts))
	for id, fa := range accounts {
		ids, versions, reasons = append(ids, id), append(versions, uintText(fa.Version)), append(reasons, fa.Reason)
	}
	_, err := t.exec(`INSERT INTO frozen_accounts (account_id, version, reason)
		SELECT * FROM unnest($1::text[], $2::numeric[], $3::text[])
		ON CONFLICT (account_id) DO UPDATE SET version = excluded.version, reason = excluded.reason`, ids, versions, reasons)
	if err != nil {
		return fmt.Errorf("freeze accounts: %w", err)
	}
	return nil
}

func (t *tx) DeleteFrozen(ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := t.exec(`DELETE FROM frozen_accounts WHERE account_id = ANY($1::text[])`, ids); err != nil {
		return fmt.Errorf("unfreeze accounts: %w", err)
	}
	return nil
}

func (t *tx) ClearFrozen() error {
	// DELETE, not TRUNCATE: TRUNCATE is not MVCC-safe under SERIALIZABLE.
	if _, err := t.exec(`DELETE FROM frozen_accounts`); err != nil {
		return fmt.Errorf("clear the freeze list: %w", err)
	}
	return nil
}

func (t *tx) EachFrozen(fn func(string, gateway.FrozenAccount) error) error {
	return each(t, scanFrozen, func(f frozenRow) error { return fn(f.account, f.fa) },
		`SELECT account_id, version::text, reason FROM frozen_accounts`)
}

// Published documents.

func scanDocument(r pgx.Rows) (*central.Document, error) {
	var (
		d             central.Document
		kind, version string
		published     pgtype.Timestamptz
	)
	if err := r.Scan(&kind, &d.StoreID, &version, &d.Snapshot, &d.Raw, &published); err != nil {
		return nil, err
	}
	v, err := parseUint(version)
	d.Kind, d.Version, d.PublishedAt = gateway.DocumentKind(kind), v, timeOf(published)
	return &d, err
}

const documentColumns = `kind, store_id, version::text, false, raw, published_at`

const freezeColumns = `'freeze', '', version::text, snapshot, raw, published_at`

// one returns the first of a query's documents, or nil.
func (t *tx) one(sql string, args ...any) (*central.Document, error) {
	all, err := collect(t, scanDocument, sql, args...)
	if err != nil || len(all) == 0 {
		return nil, err
	}
	return all[0], nil
}

func (t *tx) Document(kind gateway.DocumentKind, storeID string) (*central.Document, error) {
	d, err := t.one(`SELECT `+documentColumns+` FROM documents WHERE kind = $1 AND store_id = $2`, string(kind), storeID)
	if err != nil {
		return nil, fmt.Errorf("read %s document: %w", kind, err)
	}
	return d, nil
}

func (t *tx) PutDocument(d *central.Document) error {
	_, err := t.exec(`INSERT INTO documents (kind, store_id, version, raw, published_at) VALUES ($1, $2, $3::numeric, $4, $5)
		ON CONFLICT (kind, store_id) DO UPDATE SET version = excluded.version, raw = excluded.raw, published_at = excluded.published_at`,
		string(d.Kind), d.StoreID, uintText(d.Version), d.Raw, d.PublishedAt)
	if err != nil {
		return fmt.Errorf("write %s document: %w", d.Kind, err)
	}
	return nil
}

func (t *tx) EachDocument(fn func(*central.Document) error) error {
	return each(t, scanDocument, fn, `SELECT `+documentColumns+` FROM documents`)
}

func (t *tx) LatestFreeze() (*central.Document, error) {
	d, err := t.one(`SELECT ` + freezeColumns + ` FROM freeze_log ORDER BY version DESC LIMIT 1`)
	if err != nil {
		return nil, fmt.Errorf("read the freeze log: %w", err)
	}
	return d, nil
}

func (t *tx) AppendFreeze(d *central.Document) (bool, error) {
	n, err := t.exec(`INSERT INTO freeze_log (version, snapshot, raw, published_at) VALUES ($1::numeric, $2, $3, $4)
		ON CONFLICT (version) DO NOTHING`, uintText(d.Version), d.Snapshot, d.Raw, d.PublishedAt)
	if err != nil {
		return false, fmt.Errorf("append to the freeze log: %w", err)
	}
	return n == 1, nil
}

func (t *tx) ClearFreezeLog() error {
	if _, err := t.exec(`DELETE FROM freeze_log`); err != nil {
		return fmt.Errorf("clear the freeze log: %w", err)
	}
	return nil
}

func (t *tx) EachFreeze(fn func(*central.Document) error) error {
	return each(t, scanDocument, fn, `SELECT `+freezeColumns+` FROM freeze_log ORDER BY version`)
}
