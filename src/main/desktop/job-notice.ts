// The desktop notifications for jobs: a thin adapter of src/shared/job-news.ts, which the window's
// notices use too, so both tell the same changes in the same words. The main process hears the
// core's `job` events itself, so it notifies with the window hidden or gone to the tray, and the page
// leaves notifying to it. Each event carries what happened, told once by the engine.
import { jobNews, newsBody, type JobNews } from '../../shared/job-news.ts';
import type { JobEvent } from '../../shared/model.ts';

export interface JobNotice {
  jobId: string;
  hostId: string;
  domain: string;
  disk: string;
  title: string;
  body: string;
  urgency: JobNews['urgency'];
}

/** The notification for a `job` event, or null when what happened is not news. */
export function jobNotice(event: JobEvent): JobNotice | null {
  const news = jobNews(event, event.transition);
  if (news === null) return null;
  return { jobId: event.id, hostId: event.hostId, domain: event.domain, disk: event.disk, title: news.title, body: newsBody(news), urgency: news.urgency };
}
