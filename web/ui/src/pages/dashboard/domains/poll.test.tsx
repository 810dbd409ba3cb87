import { act, render } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { startPolling, usePollWhile } from "./poll";

function setHidden(hidden: boolean) {
  Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
  document.dispatchEvent(new Event("visibilitychange"));
}

beforeEach(() => {
  vi.useFakeTimers();
  setHidden(false);
});

afterEach(() => {
  vi.useRealTimers();
  setHidden(false);
});

describe("startPolling", () => {
  it("checks once per interval while the page is visible", async () => {
    const tick = vi.fn();
    const stop = startPolling({ intervalMs: 10_000, tick });
    expect(tick).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(tick).toHaveBeenCalledTimes(3);
    stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(tick).toHaveBeenCalledTimes(3);
  });

  it("pauses while the tab is hidden and checks at once when it is shown again", async () => {
    const tick = vi.fn();
    const stop = startPolling({ intervalMs: 10_000, tick });
    await vi.advanceTimersByTimeAsync(5_000);
    setHidden(true);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(tick).not.toHaveBeenCalled();
    setHidden(false);
    await vi.advanceTimersByTimeAsync(0);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(tick).toHaveBeenCalledTimes(2);
    stop();
  });

  it("can check at once, then keep the rhythm", async () => {
    const tick = vi.fn();
    const stop = startPolling({ intervalMs: 10_000, tick, immediately: true });
    await vi.advanceTimersByTimeAsync(0);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(9_999);
    expect(tick).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(tick).toHaveBeenCalledTimes(2);
    stop();
  });

  it("never overlaps a slow check and keeps going after a failed one", async () => {
    let finish: () => void = () => {};
    const tick = vi
      .fn()
      .mockImplementationOnce(() => new Promise<void>((resolve) => (finish = resolve)))
      .mockImplementationOnce(() => Promise.reject(new Error("network down")))
      .mockImplementation(() => undefined);
    const stop = startPolling({ intervalMs: 1_000, tick });
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(tick).toHaveBeenCalledTimes(1);
    finish();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(tick).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(tick).toHaveBeenCalledTimes(3);
    stop();
  });
});

function Poller({ active, tick }: { active: boolean; tick: () => void }) {
  usePollWhile(active, 10_000, tick);
  return null;
}

describe("usePollWhile", () => {
  it("polls only while active, e.g. until the domain is verified", async () => {
    const tick = vi.fn();
    const { rerender, unmount } = render(<Poller active tick={tick} />);
    await act(() => vi.advanceTimersByTimeAsync(20_000));
    expect(tick).toHaveBeenCalledTimes(2);
    rerender(<Poller active={false} tick={tick} />);
    await act(() => vi.advanceTimersByTimeAsync(60_000));
    expect(tick).toHaveBeenCalledTimes(2);
    rerender(<Poller active tick={tick} />);
    await act(() => vi.advanceTimersByTimeAsync(10_000));
    expect(tick).toHaveBeenCalledTimes(3);
    unmount();
    await act(() => vi.advanceTimersByTimeAsync(60_000));
    expect(tick).toHaveBeenCalledTimes(3);
  });

  it("calls the newest callback, not the one from the first render", async () => {
    const first = vi.fn();
    const second = vi.fn();
    const { rerender, unmount } = render(<Poller active tick={first} />);
    rerender(<Poller active tick={second} />);
    await act(() => vi.advanceTimersByTimeAsync(10_000));
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);
    unmount();
  });
});
