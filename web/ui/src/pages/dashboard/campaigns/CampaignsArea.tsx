import { Route, Routes } from "react-router";
import NotFoundPage from "../../NotFoundPage";
import { CampaignEditorPage } from "./CampaignEditorPage";
import { CampaignPage } from "./CampaignPage";
import { CampaignsPage } from "./CampaignsPage";
import { RecipientPage } from "./RecipientPage";

/** /dashboard/campaigns/*: the list, the editor, a campaign's analytics and a recipient's timeline. */
export default function CampaignsArea() {
  return (
    <Routes>
      <Route index element={<CampaignsPage />} />
      <Route path="new" element={<CampaignEditorPage />} />
      <Route path=":id" element={<CampaignPage />} />
      <Route path=":id/edit" element={<CampaignEditorPage />} />
      <Route path=":id/recipients/:recipientId" element={<RecipientPage />} />
      <Route path="*" element={<NotFoundPage />} />
    </Routes>
  );
}

export function campaignPath(id: string, tail = ""): string {
  return `/dashboard/campaigns/${encodeURIComponent(id)}${tail}`;
}
