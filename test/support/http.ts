/** The order body of the HTTP API tests (http.test.ts, http-bad-input.test.ts), and its user. */
export const user = "8f0e2d0a-3f5e-4a7b-9c1d-2e3f4a5b6c7d"
export const body = { userId: user, amount: "299.99", currency: "EUR" }
