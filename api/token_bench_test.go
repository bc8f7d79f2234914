package api

import (
	"testing"

	"github.com/google/uuid"
)

// Benchmarks of the queue token, which every request of an admitted or waiting user signs or checks
// (`go test -run '^$' -bench Token ./api`).

func benchTokens(b *testing.B) *Tokens {
	b.Helper()
	tokens, err := NewTokens([]byte("benchmark-token-secret-0123456789"))
	if err != nil {
		b.Fatal(err)
	}
	return tokens
}

// BenchmarkTokenSign signs a session ID, as every token request does.
func BenchmarkTokenSign(b *testing.B) {
	tokens := benchTokens(b)
	session := uuid.NewString()
	for b.Loop() {
		_ = tokens.Sign(session)
	}
}

// BenchmarkTokenVerify checks a good token, as every authenticated request does before it reads the
// session.
func BenchmarkTokenVerify(b *testing.B) {
	tokens := benchTokens(b)
	token := tokens.Sign(uuid.NewString())
	for b.Loop() {
		if _, err := tokens.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTokenVerifyForged checks a token whose signature does not match: the cost of turning away a
// forged or altered token.
func BenchmarkTokenVerifyForged(b *testing.B) {
	tokens := benchTokens(b)
	token := tokens.Sign(uuid.NewString())
	forged := token[:len(token)-1] + "A"
	if forged == token {
		forged = token[:len(token)-1] + "B"
	}
	for b.Loop() {
		if _, err := tokens.Verify(forged); err == nil {
			b.Fatal("a forged token was accepted")
		}
	}
}
