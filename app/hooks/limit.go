package hooks

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter bounds the requests each source takes in: a token bucket per
// source (golang.org/x/time/rate) that refills at a steady rate and holds
// a burst. Anyone who knows a source's URL can send to it, and reading and
// verifying a body costs CPU before a forgery is refused; a verified flood
// would queue deliveries. A refused request costs nothing but a map lookup.
//
// Each replica counts its own requests, so the limit of a deployment is
// the limit times the replicas a load balancer spreads a source over. A
// nil *Limiter allows everything. It is safe for concurrent use.
type Limiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	sources map[string]*rate.Limiter
	pruneAt int // prune when sources has this many buckets
}

// minPrune is the fewest buckets kept before idle ones are dropped.
const minPrune = 1024

// NewLimiter returns a Limiter that lets each source take perSecond
// requests a second on average and burst at once. perSecond 0 means no
// limit: NewLimiter returns nil.
func NewLimiter(perSecond float64, burst int) *Limiter {
	if perSecond <= 0 {
		return nil
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: max(burst, 1), now: time.Now,
		sources: map[string]*rate.Limiter{}, pruneAt: minPrune}
}

// take counts one request to the source id. It returns 0 when the request
// may go on, or how long until the source's bucket holds a request again;
// a request refused takes nothing from the bucket, so a flood does not
// push the provider's own retries further out. A source without a bucket
// gets a full one only when create is true; known is false when it had
// none and none was made. Buckets are made only for sources that exist,
// so guessed ids cannot grow the map.
func (l *Limiter) take(id string, create bool) (wait time.Duration, known bool) {
	if l == nil {
		return 0, true
	}
	now := l.now()
	l.mu.Lock()
	b, ok := l.sources[id]
	if !ok && create {
		if len(l.sources) >= l.pruneAt {
			l.prune(now)
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.sources[id] = b
	}
	l.mu.Unlock()
	if b == nil {
		return 0, false
	}
	r := b.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now) // refused: the request is not sent on, so it spends nothing
		return d, true
	}
	return 0, true
}

// prune drops the buckets that are full: a new one would be the same, so
// forgetting them changes no answer. A deleted source's bucket goes this
// way. l.mu is held.
func (l *Limiter) prune(now time.Time) {
	for id, b := range l.sources {
		if b.TokensAt(now) >= float64(l.burst) {
			delete(l.sources, id)
		}
	}
	// Pruning again before the map doubles would scan busy buckets on
	// every new source.
	l.pruneAt = max(minPrune, 2*len(l.sources))
}
