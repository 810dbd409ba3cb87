import { PageHeader } from "../components/Card";
import { SettingsTabs } from "../components/SettingsTabs";

export default function SettingsPage() {
  return (
    <>
      <PageHeader title="Settings" description="Your account, its plan and this month's usage." />
      <SettingsTabs />
    </>
  );
}
