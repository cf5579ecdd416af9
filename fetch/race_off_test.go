//go:build !race

package fetch

const allocSlack = 0
