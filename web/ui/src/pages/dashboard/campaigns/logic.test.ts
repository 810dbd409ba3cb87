import { describe, expect, it } from "vitest";
import {
  chartGeometry,
  describeDelay,
  describeWindow,
  displayStatus,
  labelledIndexes,
  mergeTags,
  niceCeiling,
  rate,
  stageDays,
  ticks,
  zonedToUtc,
} from "./logic";

const box = { width: 600, height: 200, left: 40, right: 10, top: 10, bottom: 30 };
const point = (start: string, sent: number, opened = 0, clicked = 0, replied = 0) => ({ start, sent, opened, clicked, replied });

describe("chart scale", () => {
  it("rounds the axis top up to 1, 2 or 5 times a power of ten", () => {
    expect([0, 1, 3, 7, 10, 11, 180, 201, 999].map(niceCeiling)).toEqual([1, 1, 5, 10, 10, 20, 200, 500, 1000]);
  });

  it("ticks whole, round numbers up to the top", () => {
    expect(ticks(1)).toEqual([0, 1]);
    expect(ticks(5)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(ticks(10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(ticks(20)).toEqual([0, 5, 10, 15, 20]);
    expect(ticks(200)).toEqual([0, 50, 100, 150, 200]);
  });

  it("puts zero on the baseline and the top at the plot's top edge", () => {
    const geometry = chartGeometry([point("a", 0), point("b", 8, 2), point("c", 4, 1, 1, 1)], box);
    expect(geometry.top).toBe(10);
    expect(geometry.y(0)).toBe(170);
    expect(geometry.y(10)).toBe(10);
    expect(geometry.xs).toEqual([40, 315, 590]);
    expect(geometry.paths.sent).toBe("M40 170 L315 42 L590 106");
    expect(geometry.paths.replied).toBe("M40 170 L315 170 L590 154");
    // Sends are bars on the baseline, 60% of the space between points at most 32 units wide.
    expect(geometry.bars).toEqual([
      { x: 24, y: 170, width: 32, height: 0 },
      { x: 299, y: 42, width: 32, height: 128 },
      { x: 574, y: 106, width: 32, height: 64 },
    ]);
  });

  it("centres a single point and scales an empty chart to 1", () => {
    const geometry = chartGeometry([point("a", 0)], box);
    expect(geometry.top).toBe(1);
    expect(geometry.xs).toEqual([315]);
    expect(geometry.paths.opened).toBe("M315 170");
  });

  it("labels a handful of evenly spread points, first and last included", () => {
    expect(labelledIndexes(3)).toEqual([0, 1, 2]);
    expect(labelledIndexes(25, 5)).toEqual([0, 6, 12, 18, 24]);
  });
});

describe("stage delays", () => {
  it("counts each stage's day from the previous one", () => {
    expect(stageDays([0, 3, 4])).toEqual([1, 4, 8]);
    expect(stageDays([0, 0, 1])).toEqual([1, 1, 2]);
  });

  it("says when a follow-up goes", () => {
    expect(describeDelay(0, [0, 3])).toBe("Sent when the campaign starts (day 1).");
    expect(describeDelay(1, [0, 3])).toBe("Sent 3 days after stage 1 if they have not replied (day 4).");
    expect(describeDelay(2, [0, 3, 1])).toBe("Sent 1 day after stage 2 if they have not replied (day 5).");
    expect(describeDelay(1, [0, 0])).toBe("Sent the same day as stage 1 if they have not replied (day 1).");
  });
});

describe("labels", () => {
  it("gives rates with one decimal below 10%", () => {
    expect(rate(0, 0)).toBe("—");
    expect(rate(1, 3)).toBe("33%");
    expect(rate(1, 40)).toBe("2.5%");
    expect(rate(0, 5)).toBe("0%");
  });

  it("shows a running campaign that has not started as scheduled", () => {
    const schedule = { timezone: "UTC", startAt: null, days: [], hours: [0, 24] as [number, number], dailyCap: null, spacingSeconds: 0 };
    expect(displayStatus({ status: "running", schedule }, 1000, 5000).label).toBe("Scheduled");
    expect(displayStatus({ status: "running", schedule }, 9000, 5000).label).toBe("Running");
    expect(displayStatus({ status: "completed", schedule }).label).toBe("Finished");
    expect(displayStatus({ status: "canceled", schedule }).label).toBe("Cancelled");
  });

  it("reads a wall-clock time in a zone", () => {
    expect(zonedToUtc("2026-12-08T09:00", "Europe/Paris")).toBe(Date.UTC(2026, 11, 8, 8, 0));
    expect(zonedToUtc("2026-07-08T09:00", "America/New_York")).toBe(Date.UTC(2026, 6, 8, 13, 0));
    expect(zonedToUtc("soon", "UTC")).toBeNull();
  });

  it("describes a sending window", () => {
    expect(describeWindow([1, 2, 3, 4, 5], [9, 17])).toBe("Mon–Fri, 9:00–17:00");
    expect(describeWindow([1, 2, 3, 4, 5, 6, 7], [0, 24])).toBe("Every day, any hour");
    expect(describeWindow([2, 4], [8, 12])).toBe("Tue, Thu, 8:00–12:00");
  });

  it("finds merge tags and their fallbacks", () => {
    expect(mergeTags("Hi {{firstName|there}}, {{ company }}")).toEqual([
      { name: "firstName", fallback: "there" },
      { name: "company", fallback: null },
    ]);
  });
});
