package storetest

import "testing"

// tests is the suite, by name.
var tests = []struct {
	name string
	run  func(*testing.T, NewStorage)
}{
	{"Authorize_Approve", testAuthorizeApprove},
	{"Authorize_Idempotent", testAuthorizeIdempotent},
	{"Authorize_Replayed", testAuthorizeReplayed},
	{"Authorize_InsufficientFunds", testAuthorizeInsufficientFunds},
	{"Authorize_UnknownAccount", testAuthorizeUnknownAccount},
	{"Authorize_TokenDeclines", testAuthorizeTokenDeclines},
	{"Authorize_PaymentCode", testAuthorizePaymentCode},
	{"Authorize_Malformed", testAuthorizeMalformed},
	{"Authorize_Canceled", testAuthorizeCanceled},
	{"Authorize_FrozenAccount", testAuthorizeFrozenAccount},
	{"Authorize_ConcurrentOneToken", testAuthorizeConcurrentOneToken},
	{"Authorize_ConcurrentTokens", testAuthorizeConcurrentTokens},
	{"SubmitSettlements_Capture", testSubmitCapture},
	{"SubmitSettlements_CaptureMismatch", testSubmitCaptureMismatch},
	{"SubmitSettlements_Reversal", testSubmitReversal},
	{"SubmitSettlements_CaptureAndReversalInOneBatch", testSubmitCaptureAndReversalInOneBatch},
	{"SubmitSettlements_OfflineCapture", testSubmitOfflineCapture},
	{"SubmitSettlements_ReversalBeforeCapture", testSubmitReversalBeforeCapture},
	{"SubmitSettlements_Malformed", testSubmitMalformed},
	{"SubmitSettlements_OfflineCaptureSpendsToken", testOfflineCaptureSpendsToken},
	{"SubmitSettlements_OfflineCaptureTokenUsedOnline", testOfflineCaptureTokenUsedOnline},
	{"SubmitSettlements_OfflineCaptureOfHeldSale", testOfflineCaptureOfHeldSale},
	{"SubmitSettlements_OfflineCaptureOfDeclinedSale", testOfflineCaptureOfDeclinedSale},
	{"SubmitSettlements_OfflineCaptureWithoutTokenID", testOfflineCaptureWithoutTokenID},
	{"SubmitSettlements_OfflineCaptureTokenTwiceInOneBatch", testOfflineCaptureTokenTwiceInOneBatch},
	{"SubmitSettlements_OverlappingBatches", testOverlappingBatches},
	{"Ledger_VoidStaleHolds", testVoidStaleHolds},
	{"Ledger_VoidStaleHoldsMany", testVoidStaleHoldsMany},
	{"Ledger_Accounts", testAccounts},
	{"Ledger_IssueCode", testIssueCode},
	{"Ledger_PersistsAcrossReopen", testPersistsAcrossReopen},
	{"Ledger_Close", testClose},
	{"Storage_OpenTwice", testOpenTwice},
	{"Storage_ReadsAreCopies", testReadsAreCopies},
	{"Books_Totals", testBooksTotals},
	{"Publisher_Publish", testPublish},
	{"Publisher_PolicyKey", testPublishPolicyKey},
	{"Publisher_FreezeLog", testPublishFreezeLog},
	{"Publisher_PersistsAcrossReopen", testPublishPersistsAcrossReopen},
	{"Publisher_TwoPublishers", testPublishTwoPublishers},
	{"Publisher_MaxVersionStep", testPublishMaxVersionStep},
}

// Run runs the whole contract suite against the backend that ns makes,
// each test as a subtest of t on a fresh storage of its own. The subtests
// run in parallel with each other.
func Run(t *testing.T, ns NewStorage) {
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, ns)
		})
	}
}
