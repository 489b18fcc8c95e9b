package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// stormDriverEnv, set to 1, turns the test binary into the load driver of
// BenchmarkRefreshStorm: the 1,000 clients, the provider they make
// Latchkey renew with and the ordinary route's timer, in a process of
// their own as they are on other machines in production. In the server's
// process they would queue in its scheduler with its own goroutines and
// count against it. They still share the machine's cores.
const stormDriverEnv = "LATCHKEY_STORM_DRIVER"

// stormCommand is one line the benchmark sends the driver on its stdin;
// the driver answers each with one stormResult line on its stdout.
type stormCommand struct {
	Op    string        // "idle": time Apps N times; "storm": call Calls for every user at once, timing Apps meanwhile
	Apps  string        // the ordinary route's URL
	Calls string        // a fmt format of the calls' URL, given the user's number
	Key   string        // the API key, for every request
	N     int           // idle: how many times; storm: how many users
	Least time.Duration // storm: time Apps at least this long
}

type stormResult struct {
	Took    time.Duration
	Latency []time.Duration // of Apps, in order
	Failed  int64
	Error   string
}

// stormProvider answers every token request, after delay, with a token
// for an hour and a rotated refresh token; the waiter only waits.
const stormDelay = 500 * time.Millisecond

// runStormDriver serves the benchmark's commands until stdin closes. It
// first writes the provider's and the waiter's URLs.
func runStormDriver() {
	serve := func(h http.HandlerFunc) string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		go http.Serve(l, h)
		return "http://" + l.Addr().String()
	}
	provider := serve(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		time.Sleep(stormDelay)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"fresh","refresh_token":"rotated","token_type":"Bearer","expires_in":3600}`)
	})
	waiter := serve(func(http.ResponseWriter, *http.Request) { time.Sleep(stormDelay) })
	out := json.NewEncoder(os.Stdout)
	out.Encode(map[string]string{"provider": provider, "waiter": waiter})

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2000}, Timeout: time.Minute}
	get := func(u, key string) error {
		req, _ := http.NewRequest("GET", u, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
		}
		return nil
	}
	// timeApps calls the ordinary route one call at a time, 5 ms apart,
	// n times or until stop closes.
	timeApps := func(c stormCommand, n int, stop <-chan struct{}) ([]time.Duration, error) {
		var lat []time.Duration
		for range n {
			select {
			case <-stop:
				return lat, nil
			default:
			}
			start := time.Now()
			if err := get(c.Apps, c.Key); err != nil {
				return lat, err
			}
			lat = append(lat, time.Since(start))
			time.Sleep(5 * time.Millisecond)
		}
		return lat, nil
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		var c stormCommand
		var res stormResult
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			res.Error = err.Error()
			out.Encode(res)
			continue
		}
		switch c.Op {
		case "idle":
			lat, err := timeApps(c, c.N, nil)
			res.Latency = lat
			if err != nil {
				res.Error = err.Error()
			}
		case "storm":
			stop := make(chan struct{})
			var appsErr error
			done := make(chan struct{})
			go func() {
				res.Latency, appsErr = timeApps(c, 1<<30, stop)
				close(done)
			}()
			start := time.Now()
			var wg sync.WaitGroup
			var failed atomic.Int64
			var firstErr atomic.Value
			for i := range c.N {
				wg.Go(func() {
					if err := get(fmt.Sprintf(c.Calls, i), c.Key); err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
				})
			}
			wg.Wait()
			res.Took = time.Since(start)
			time.Sleep(c.Least - res.Took)
			close(stop)
			<-done
			res.Failed = failed.Load()
			if e, ok := firstErr.Load().(string); ok {
				res.Error = e
			} else if appsErr != nil {
				res.Error = appsErr.Error()
			}
		default:
			res.Error = "unknown op " + c.Op
		}
		out.Encode(res)
	}
}

// stormDriver is the benchmark's end of a running driver.
type stormDriver struct {
	provider, waiter string
	in               *json.Encoder
	out              *json.Decoder
}

// startStormDriver runs this test binary again as the load driver, and
// stops it when the benchmark ends.
func startStormDriver(tb testing.TB) *stormDriver {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), stormDriverEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		stdin.Close()
		cmd.Wait()
	})
	d := &stormDriver{in: json.NewEncoder(stdin), out: json.NewDecoder(stdout)}
	var urls map[string]string
	if err := d.out.Decode(&urls); err != nil {
		tb.Fatalf("the storm driver did not start: %v", err)
	}
	d.provider, d.waiter = urls["provider"], urls["waiter"]
	return d
}

// do sends c and returns the driver's answer.
func (d *stormDriver) do(tb testing.TB, c stormCommand) stormResult {
	tb.Helper()
	if err := d.in.Encode(c); err != nil {
		tb.Fatal(err)
	}
	var res stormResult
	if err := d.out.Decode(&res); err != nil {
		tb.Fatal(err)
	}
	if res.Error != "" {
		tb.Errorf("storm driver, %s: %s", c.Op, res.Error)
	}
	return res
}
