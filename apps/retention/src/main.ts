import { runServiceMain } from '@soma/service-runtime';
import { retentionService } from './retention.service-definition.js';

runServiceMain(retentionService);
