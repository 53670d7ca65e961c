// Timers that never end early. Node starts a timer from the event loop's cached clock, which lags
// real time by the work already done in the current turn: setTimeout(f, 300) can call f after
// 299 ms of real time. The shutdown's delay covers the endpoints' propagation and the drain's
// deadline is a promise to clients in flight: both wait at least their time on the monotonic clock.


export interface Timer {
    clear(): void;
}


export const atLeast = function (ms: number, callback: () => void, options: { ref?: boolean } = {}): Timer {

    const due = performance.now() + ms;
    let timer: NodeJS.Timeout;
    const arm = (wait: number) => {

        timer = setTimeout(() => {

            const left = due - performance.now();
            if (left > 0) {
                return arm(left);
            }

            callback();
        }, Math.ceil(wait));

        if (options.ref === false) {
            timer.unref();
        }
    };

    arm(ms);
    return { clear: () => clearTimeout(timer) };
};


export const sleepAtLeast = function (ms: number): Promise<void> {

    return new Promise((resolve) => {

        atLeast(ms, resolve);
    });
};
