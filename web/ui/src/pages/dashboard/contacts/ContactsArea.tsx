import { Route, Routes } from "react-router";
import NotFoundPage from "../../NotFoundPage";
import ContactsPage from "./ContactsPage";
import ImportWizard from "./ImportWizard";

/** /dashboard/contacts and its import wizard (/dashboard/contacts/import). */
export default function ContactsArea() {
  return (
    <Routes>
      <Route index element={<ContactsPage />} />
      <Route path="import" element={<ImportWizard />} />
      <Route path="*" element={<NotFoundPage />} />
    </Routes>
  );
}
