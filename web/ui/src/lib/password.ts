/** A rough strength hint for a new password; the server's only rule is 8 to 1024 characters. */

export const MIN_PASSWORD_LENGTH = 8;

export type Strength = { score: 0 | 1 | 2 | 3 | 4; label: string; hint: string };

export function passwordStrength(password: string): Strength {
  if (password.length === 0) {
    return { score: 0, label: "", hint: `At least ${MIN_PASSWORD_LENGTH} characters; a few unrelated words work well.` };
  }
  if (password.length < MIN_PASSWORD_LENGTH) {
    const missing = MIN_PASSWORD_LENGTH - password.length;
    return { score: 0, label: "Too short", hint: `${missing} more character${missing === 1 ? "" : "s"} needed.` };
  }
  const classes = [/[a-z]/, /[A-Z]/, /[0-9]/, /[^A-Za-z0-9]/].filter((re) => re.test(password)).length;
  const unique = new Set(password).size;
  let score = 1;
  if (password.length >= 12) score++;
  if (password.length >= 16 || (password.length >= 12 && classes >= 3)) score++;
  if (password.length >= 20 && unique >= 10) score++;
  if (unique <= 3) score = 1;
  const clamped = Math.min(4, score) as Strength["score"];
  const labels = ["Too short", "Weak", "Fair", "Good", "Strong"] as const;
  const hints = [
    "",
    "Longer is stronger: try 12 characters or more.",
    "Good start; a few more characters make it much harder to guess.",
    "A good password.",
    "A strong password.",
  ] as const;
  return { score: clamped, label: labels[clamped], hint: hints[clamped] };
}
