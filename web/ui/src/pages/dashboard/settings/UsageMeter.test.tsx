import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";

import { UsageMeter, usageLevel, usageText } from "./UsageMeter";

describe("usageLevel", () => {
  it("turns high from 80 % and full at the limit", () => {
    expect(usageLevel(0, 1000)).toEqual({ percent: 0, level: "normal" });
    expect(usageLevel(799, 1000).level).toBe("normal");
    expect(usageLevel(800, 1000).level).toBe("high");
    expect(usageLevel(1000, 1000)).toEqual({ percent: 100, level: "full" });
  });

  it("caps the bar at 100 % when usage went over (a plan was downgraded)", () => {
    expect(usageLevel(7, 3)).toEqual({ percent: 100, level: "full" });
  });

  it("treats no limit as unlimited", () => {
    expect(usageLevel(5_000_000, null)).toEqual({ percent: 0, level: "normal" });
    expect(usageText(3, null)).toBe(`${(3).toLocaleString()} (unlimited)`);
  });
});

describe("UsageMeter", () => {
  it("names the meter and reads out the count against the quota", () => {
    render(<UsageMeter label="Emails this month" used={250} limit={1000} />);
    const meter = screen.getByRole("meter", { name: "Emails this month" });
    expect(meter).toHaveAttribute("aria-valuenow", "250");
    expect(meter).toHaveAttribute("aria-valuemax", "1000");
    expect(meter).toHaveAttribute("aria-valuetext", usageText(250, 1000));
  });

  it("draws no bar for an unlimited quota", () => {
    render(<UsageMeter label="Domains" used={4} limit={null} />);
    expect(screen.queryByRole("meter")).toBeNull();
    expect(screen.getByText(usageText(4, null))).toBeInTheDocument();
  });
});
